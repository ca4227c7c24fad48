export * from './fullBackup.js';
export * from './messages.js';
