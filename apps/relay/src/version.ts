/** Version of the relay, announced in `hello` messages. */
export const RELAY_VERSION = '0.1.0'
