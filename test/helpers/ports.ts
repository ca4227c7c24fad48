export { freePortOnLoopback as freePort } from '../../src/activities/ports.js';
