export * from './fullBackup.js';
export * from './verifyBackup.js';
export * from './restoreDatabase.js';
export * from './messages.js';
