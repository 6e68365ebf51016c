/**
 * What the app says of this device's storage (`store.storageSpace`): the
 * warning before the browser's room for the app runs out, and the line on
 * the sync page. Sizes in the units people read (kB, MB, GB: powers of
 * 1,000, as operating systems and browsers show disk space).
 */
import type { StorageSpace } from '@concord/engine'

/** Bytes as people read them: "740 kB", "12 MB", "1.4 GB". */
export const formatBytes = (bytes: number): string => {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB']
  let value = Math.max(0, bytes)
  let unit = 0
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000
    unit++
  }
  if (unit === 0) return `${Math.round(value)} ${value === 1 ? 'byte' : 'bytes'}`
  return `${value < 10 ? Math.round(value * 10) / 10 : Math.round(value)} ${units[unit]}`
}

/** The used share of the quota, as a whole percentage (99 % while any room is left). */
export const usedPercent = (space: Pick<StorageSpace, 'usage' | 'quota'>): number => {
  const share = Math.round((space.usage / space.quota) * 100)
  return space.usage < space.quota ? Math.min(share, 99) : 100
}

/**
 * The warning banner's text while the space is low; `removed`: how many records were removed from this device to
 * make room (none when every record here was used in the last month, or still has changes the relay lacks).
 */
export const spaceWarningText = (space: StorageSpace, removed: number): string =>
  `${formatBytes(space.usage)} of the ${formatBytes(space.quota)} this browser allows the app are used (${usedPercent(space)} %). ` +
  'Changes are still saved here. ' +
  (removed === 0
    ? 'Records nobody changed or opened here for a month are removed to make room (they stay on the relay); none has been so far. '
    : `${removed} ${removed === 1 ? 'record' : 'records'} nobody changed or opened here for a month ${removed === 1 ? 'was' : 'were'} removed to make room (they stay on the relay). `) +
  'Once it is full, new changes are kept in this tab only until the relay has them — free up space on this device, or keep the app online.'

/** The sync page's line: how much is used, and whether the browser may clear it. */
export const spaceLineText = (space: StorageSpace): string => {
  const used = `${formatBytes(space.usage)} of ${formatBytes(space.quota)} used (${usedPercent(space)} %).`
  if (space.persisted === true) return `${used} The browser keeps this data when the disk runs low.`
  if (space.persisted === false)
    return `${used} The browser may clear this data when the disk runs low: what the relay has stored is safe, changes not yet synced are not.`
  return used
}

/** The sync page's line on records removed from this device to free space. */
export const removedText = (count: number): string =>
  `${count} ${count === 1 ? 'record' : 'records'} nobody changed or opened here for a month ${count === 1 ? 'was' : 'were'} removed from this device to free space. ` +
  `${count === 1 ? 'It is' : 'They are'} still listed, and ${count === 1 ? 'comes' : 'come'} back from the relay when opened online.`
