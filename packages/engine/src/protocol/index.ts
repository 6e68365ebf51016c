export * from './messages.js'
export * from './stateVector.js'
