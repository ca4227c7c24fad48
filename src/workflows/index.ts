export * from './fullBackup.js';
export * from './verifyBackup.js';
export * from './messages.js';
