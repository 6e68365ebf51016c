/**
 * `concord-relay token`: mints an HS256 access token signed with the
 * relay's `JWT_SECRET` (or the file `--jwt-secret-file` / `JWT_SECRET_FILE`
 * names), with the claims the relay checks (`sub`, `name`, `access`, `iat`,
 * `exp`, and `iss` / `aud` when the relay requires them: the same
 * `--jwt-issuer` / `--jwt-audience` flags and variables; see
 * `auth/JwtAuthenticator`). Grants name a workspace id, a doc name or `*`;
 * anything else could never match a doc and is refused. For testing and for
 * small self-hosted teams; a host app normally mints tokens itself.
 *
 * @module cli/token
 */
import fs from 'node:fs'
import { SignJWT } from 'jose'
import { validateDocName } from '@concord/engine/protocol'
import { CommandError, parseCommandArgs, UsageError, type Command } from './command.js'

/** Lifetimes `--expires` takes: a number and a unit. */
const DURATION = /^(\d+)(s|m|h|d)$/
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 }

export const tokenCommand: Command = {
  name: 'token',
  summary: 'mint an access token signed with JWT_SECRET',
  usage: `Usage: concord-relay token --user <id> --workspace <ws>=<read|write> [--workspace …] [--name <name>] [--expires <time>]

Prints an HS256 token for a relay started with the same JWT_SECRET (only the
token, on stdout: TOKEN=$(node apps/relay/bundle/main.js token …), or
npm run -s relay -- token …, which keeps npm's own lines out).

  --user <id>                  user id (the sub claim)
  --workspace <ws>=<access>    access to a workspace id (or a doc name, or *): read or write; repeat for more
  --name <name>                display name (default: the user id)
  --expires <time>             lifetime: 30m, 12h, 7d, 3600s (default: 1h)
  --jwt-secret-file <file>     read the secret from a file [JWT_SECRET_FILE]
  --jwt-issuer <iss>           the iss claim, for a relay started with --jwt-issuer [JWT_ISSUER]
  --jwt-audience <aud>         the aud claim, for a relay started with --jwt-audience [JWT_AUDIENCE]

The secret comes from the environment variable JWT_SECRET (at least 32
characters), or from --jwt-secret-file. Workspace ids and doc names use
A-Z a-z 0-9 _ - . (not first), doc names with / between the parts.`,
  async run(argv, { env, out }) {
    const args = parseCommandArgs(
      'token',
      argv,
      {
        user: { type: 'string' },
        workspace: { type: 'string', multiple: true },
        name: { type: 'string' },
        expires: { type: 'string' },
        'jwt-secret-file': { type: 'string' },
        'jwt-issuer': { type: 'string' },
        'jwt-audience': { type: 'string' },
      },
      { min: 0, max: 0, names: 'no positional arguments' },
    )
    if (args === 'help') return out(this.usage)
    const { user, workspace = [], name, expires = '1h' } = args.values
    if (!user) throw new UsageError('token needs --user <id> (see concord-relay token --help)')
    if (workspace.length === 0)
      throw new UsageError('token needs at least one --workspace <ws>=<read|write> (see concord-relay token --help)')
    const access: Record<string, 'read' | 'write'> = {}
    for (const grant of workspace) {
      const match = /^(.+)=(read|write)$/.exec(grant)
      if (!match) throw new UsageError(`--workspace "${grant}" is not <ws>=read or <ws>=write`)
      const invalid = match[1] === '*' ? null : validateDocName(match[1])
      if (invalid !== null) {
        throw new UsageError(
          `--workspace "${grant}": "${match[1]}" is not a workspace id, doc name or *: ${invalid.replace(/^doc name /, '')}`,
        )
      }
      access[match[1]] = match[2] as 'read' | 'write'
    }
    const lifetime = DURATION.exec(expires)
    if (!lifetime || Number(lifetime[1]) === 0) throw new UsageError(`--expires "${expires}" is not a lifetime like 30m, 12h, 7d or 3600s`)
    const secret = secretOf(args.values['jwt-secret-file'], env)
    const issuer = args.values['jwt-issuer'] ?? (env.JWT_ISSUER || undefined)
    const audience = args.values['jwt-audience'] ?? (env.JWT_AUDIENCE || undefined)
    const now = Math.floor(Date.now() / 1000)
    const jwt = new SignJWT({ name: name ?? user, access })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user)
      .setIssuedAt(now)
      .setExpirationTime(now + Number(lifetime[1]) * UNIT_SECONDS[lifetime[2]])
    if (issuer !== undefined) jwt.setIssuer(issuer)
    if (audience !== undefined) jwt.setAudience(audience)
    out(await jwt.sign(new TextEncoder().encode(secret)))
  },
}

/** The HS256 secret, as the relay reads it. */
const secretOf = (fileFlag: string | undefined, env: Record<string, string | undefined>): string => {
  const file = fileFlag ?? (env.JWT_SECRET_FILE || undefined)
  let secret: string
  if (file !== undefined) {
    try {
      secret = fs.readFileSync(file, 'utf8').trim()
    } catch (error) {
      throw new CommandError(`cannot read the secret from ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
    }
  } else if (env.JWT_SECRET) secret = env.JWT_SECRET
  else throw new CommandError("no secret: set JWT_SECRET (the relay's HS256 secret) or pass --jwt-secret-file")
  if (secret.length < 32) throw new CommandError('the secret must be at least 32 characters (as the relay requires)')
  return secret
}
