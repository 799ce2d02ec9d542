export { default } from '@angos/test-support/s3-global-setup';
