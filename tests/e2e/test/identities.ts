/**
 * Basic-auth identities of the suites that log in: cheap Argon2id hashes (m=64, t=1) of
 * "admin-secret" and "alice-secret", for `[auth.identity.*] password`.
 */
export const ADMIN_HASH =
  '$argon2id$v=19$m=64,t=1,p=1$WeMtAjQBC5bJxS96k+yaiw$mNu1xuwuKkLp7rUmmoSVIkNWC6sLweHq0h910pK1NPk';
export const ALICE_HASH =
  '$argon2id$v=19$m=64,t=1,p=1$bC87hUMfbQpL2Jjl8j+RxQ$OOKrstt+HXHBcNpma8p9Sxx9K6GmHQ9hEuXjr6aomp8';
