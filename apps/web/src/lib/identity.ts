/**
 * Who this browser is: a stable id, a display name and a colour, kept in
 * localStorage so a reload keeps the same identity.
 *
 * @module lib/identity
 */

export interface Identity {
  id: string
  name: string
  color: string
}

/** Presence colours: distinguishable, and white text / dark text readable on each. */
export const PALETTE: readonly string[] = [
  '#e5484d', // red
  '#f76b15', // orange
  '#d6a100', // amber
  '#30a46c', // green
  '#12a594', // teal
  '#0090ff', // blue
  '#6e56cf', // violet
  '#d6409f', // pink
]

export const STORAGE_KEY = 'concord:identity'
export const MAX_NAME_LENGTH = 40

/** Minimal Storage surface (localStorage, or a Map-backed fake in tests). */
export interface KeyValueStore {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
}

/** A random guest identity such as `Guest 4821` in one of the palette colours. */
export function randomIdentity(random: () => number = Math.random): Identity {
  const number = 1000 + Math.floor(random() * 9000)
  const color = PALETTE[Math.floor(random() * PALETTE.length)] ?? PALETTE[0]!
  const id = Array.from({ length: 16 }, () => Math.floor(random() * 16).toString(16)).join('')
  return { id, name: `Guest ${number}`, color }
}

/** Trims and bounds a display name; falls back when nothing is left. */
export function cleanName(name: string, fallback: string): string {
  const cleaned = name.replace(/\s+/g, ' ').trim().slice(0, MAX_NAME_LENGTH)
  return cleaned === '' ? fallback : cleaned
}

const isColor = (value: unknown): value is string => typeof value === 'string' && /^#[0-9a-f]{6}$/i.test(value)

/** Reads the stored identity, repairing or replacing what is missing or broken. */
export function loadIdentity(store: KeyValueStore | null, random: () => number = Math.random): Identity {
  const fresh = randomIdentity(random)
  let stored: unknown = null
  try {
    const raw = store?.getItem(STORAGE_KEY)
    stored = raw ? JSON.parse(raw) : null
  } catch {
    stored = null
  }
  const record = (typeof stored === 'object' && stored !== null ? stored : {}) as Record<string, unknown>
  const identity: Identity = {
    id: typeof record.id === 'string' && record.id !== '' ? record.id : fresh.id,
    name: typeof record.name === 'string' ? cleanName(record.name, fresh.name) : fresh.name,
    color: isColor(record.color) ? record.color : fresh.color,
  }
  saveIdentity(store, identity)
  return identity
}

/** Stores the identity; storage errors (private mode, quota) are ignored. */
export function saveIdentity(store: KeyValueStore | null, identity: Identity): void {
  try {
    store?.setItem(STORAGE_KEY, JSON.stringify(identity))
  } catch {
    // Not being able to remember the name is not worth interrupting anyone.
  }
}

/** The palette colour after `color` (wrapping around). */
export function nextColor(color: string): string {
  const index = PALETTE.indexOf(color.toLowerCase())
  return PALETTE[(index + 1) % PALETTE.length]!
}

/** Up to two initials of a name: `Ada Lovelace` → `AL`, `Guest 4821` → `G4`. */
export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean)
  if (words.length === 0) return '?'
  const first = Array.from(words[0]!)[0] ?? ''
  const last = words.length > 1 ? (Array.from(words[words.length - 1]!)[0] ?? '') : ''
  return (first + last).toUpperCase()
}

/** Text on a person's colour: white where it reads (WCAG AA, 4.5:1), else this dark ink. */
const INK = '#16191d'

const channels = (hex: string): [number, number, number] | null => {
  const match = /^#([0-9a-f]{6})$/i.exec(hex.trim())
  if (!match) return null
  const n = parseInt(match[1]!, 16)
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255]
}

/** WCAG relative luminance of an sRGB colour (0–255 channels). */
const luminance = ([r, g, b]: readonly number[]): number => {
  const linear = (c: number): number => {
    const s = c / 255
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4
  }
  return 0.2126 * linear(r!) + 0.7152 * linear(g!) + 0.0722 * linear(b!)
}

/** WCAG contrast ratio of two colours given as `#rrggbb`. */
export function contrast(a: string, b: string): number {
  const [la, lb] = [luminance(channels(a) ?? [0, 0, 0]), luminance(channels(b) ?? [0, 0, 0])]
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05)
}

/**
 * The colours of an avatar in a person's colour, readable at any size
 * (4.5:1): the colour with white initials, or with dark initials, or —
 * when neither reads — the colour darkened just enough for white initials.
 */
export function avatarColors(color: string): { background: string; text: string } {
  const rgb = channels(color)
  if (rgb === null) return { background: color, text: '#ffffff' }
  if (contrast(color, '#ffffff') >= 4.5) return { background: color, text: '#ffffff' }
  if (contrast(color, INK) >= 4.5) return { background: color, text: INK }
  for (let keep = 0.98; keep > 0; keep -= 0.02) {
    const darker = `#${rgb
      .map((c) =>
        Math.round(c * keep)
          .toString(16)
          .padStart(2, '0'),
      )
      .join('')}`
    if (contrast(darker, '#ffffff') >= 4.5) return { background: darker, text: '#ffffff' }
  }
  return { background: INK, text: '#ffffff' }
}
