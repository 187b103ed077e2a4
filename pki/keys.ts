// RSA keys are generated natively (node:crypto): node-forge's pure-JS key generation is an order of
// magnitude slower, and forge certificates are RSA-only (see shared/reference/deps.md §6).
import { generateKeyPair, createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { PkiError } from "./names.js";

const generateKeyPairAsync = promisify(generateKeyPair);

/** Smallest RSA modulus ferry accepts anywhere (CSRs, imported keys). */
export const MIN_RSA_BITS = 2048;

export interface KeyPairPem {
  /** PKCS#8 `-----BEGIN PRIVATE KEY-----` */
  privateKeyPem: string;
  /** SPKI `-----BEGIN PUBLIC KEY-----` */
  publicKeyPem: string;
}

export async function generateRsaKeyPair(bits = 2048): Promise<KeyPairPem> {
  if (!Number.isInteger(bits) || bits < MIN_RSA_BITS) {
    throw new PkiError(`RSA key size ${bits} is below the minimum of ${MIN_RSA_BITS} bits`, "key-too-small");
  }
  const { privateKey, publicKey } = await generateKeyPairAsync("rsa", { modulusLength: bits, publicExponent: 0x10001 });
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }) as string,
  };
}

export function loadPrivateKey(pem: string, field = "private key"): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (e) {
    throw new PkiError(`${field} is not a PEM private key: ${(e as Error).message}`, "malformed");
  }
  assertRsa(key, field);
  return key;
}

export function loadPublicKey(pem: string, field = "public key"): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (e) {
    throw new PkiError(`${field} is not a PEM public key: ${(e as Error).message}`, "malformed");
  }
  assertRsa(key, field);
  return key;
}

function assertRsa(key: KeyObject, field: string): void {
  if (key.asymmetricKeyType !== "rsa") {
    throw new PkiError(
      `${field} is ${key.asymmetricKeyType ?? "unknown"}; ferry certificates are RSA (node-forge signs RSA only)`,
      "unsupported-key",
    );
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) {
    throw new PkiError(`${field} has ${bits} bits; at least ${MIN_RSA_BITS} are required`, "key-too-small");
  }
}

/** Public key (SPKI PEM) of a private key. */
export function publicKeyOf(privateKeyPem: string): string {
  return createPublicKey(loadPrivateKey(privateKeyPem)).export({ type: "spki", format: "pem" }) as string;
}
