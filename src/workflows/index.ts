export * from './fullBackup.js';
export * from './verifyBackup.js';
export * from './restoreDatabase.js';
export * from './messages.js';
export * from './baseBackup.js';
export * from './pointInTimeRecovery.js';
export * from './walMaintenance.js';
export * from './offsiteSync.js';
