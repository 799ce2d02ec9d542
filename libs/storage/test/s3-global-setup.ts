export { default } from '../src/testing/s3-global-setup.js';
