/** Seeded random text for tests that need bulk content. */
import * as prng from 'lib0/prng'

/** `n` seeded random letters (incompressible enough that no layer shrinks them). */
export const randomText = (gen: prng.PRNG, n: number): string => {
  const bytes = new Uint8Array(n)
  for (let i = 0; i < n; i += 4) {
    const r = prng.uint32(gen, 0, 0xffffffff)
    for (let k = 0; k < 4 && i + k < n; k++) bytes[i + k] = 97 + (((r >>> (8 * k)) & 0xff) % 26)
  }
  return Buffer.from(bytes).toString('latin1')
}
