/**
 * A parser for `.svelte` files as `import-x` reads them when it follows
 * imports (for `import-x/no-cycle`): the Svelte parser's program holds the
 * `<script>` blocks as elements, and `import-x` only looks for imports and
 * exports at the top of the program, so it took every component for a plain
 * script and a cycle through a component went unseen
 * (un-ts/eslint-plugin-import-x#480). This parser lifts the statements of
 * the `<script>` blocks to the top of the program; ESLint itself still lints
 * components with `svelte-eslint-parser`.
 *
 * @module
 */
import { parseForESLint as parseSvelte } from 'svelte-eslint-parser'

/**
 * Parses a component and returns its program with the statements of its
 * `<script>` and `<script module>` blocks at the top.
 *
 * @param {string} code the component's source
 * @param {Record<string, unknown>} options the parser options `import-x` passes
 */
export function parseForESLint(code, options) {
  const parsed = parseSvelte(code, options)
  parsed.ast.body = parsed.ast.body.flatMap((node) => (node.type === 'SvelteScriptElement' ? node.body : []))
  return parsed
}
