export { default } from '@angos/storage/s3-global-setup';
