/**
 * Calls the relay's HTTP API (`/api/v1/…`) the way an integration would:
 * `fetch` with a bearer token and a JSON body.
 */

/** An API answer: status, headers and the body (parsed JSON, or the raw bytes for binary answers). */
export interface ApiAnswer<T = any> {
  status: number
  headers: Headers
  body: T
  bytes: Uint8Array
}

/** Sends `method path` to the relay at `baseUrl`; `body` is sent as JSON unless it is a string. */
export const callApi = async <T = any>(
  baseUrl: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiAnswer<T>> => {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  let body: string | undefined
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body)
    headers['content-type'] ??= 'application/json'
  }
  const response = await fetch(baseUrl + path, { method, headers, body })
  const bytes = new Uint8Array(await response.arrayBuffer())
  const type = response.headers.get('content-type') ?? ''
  const parsed = type.startsWith('application/json') ? JSON.parse(new TextDecoder().decode(bytes)) : undefined
  return { status: response.status, headers: response.headers, body: parsed as T, bytes }
}
