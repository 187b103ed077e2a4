// Enrollment = token check + CSR check + issuance, as one pure step. The broker stores the returned
// (used) record with compare-and-set *before* handing out the certificate, so a token raced by two
// requests yields one certificate.
import { CsrRejectedError, fingerprint256, signCsr, type CertificateAuthority, type CsrRejection, type IssueOptions } from "./ca.js";
import { markEnrollmentTokenUsed, verifyEnrollmentToken, type EnrollmentTokenRecord, type TokenRejection } from "./tokens.js";

export interface EnrollmentRequest {
  token: string;
  cluster: string;
  csrPem: string;
}

export type EnrollmentResult =
  | { ok: true; certPem: string; caPem: string; caFingerprint256: string; record: EnrollmentTokenRecord }
  | { ok: false; reason: TokenRejection | CsrRejection; message: string };

/**
 * Verify the token for `req.cluster`, check the CSR against the agent identity of the token's
 * cluster, issue the certificate. A rejected CSR does not consume the token (the agent may retry
 * with a correct one); a successful enrollment returns the record marked used.
 */
export function enrollAgent(
  ca: CertificateAuthority,
  req: EnrollmentRequest,
  record: EnrollmentTokenRecord | undefined,
  opts: IssueOptions = {},
): EnrollmentResult {
  const now = opts.now ?? new Date();
  const verdict = verifyEnrollmentToken(req.token, record, { cluster: req.cluster, now });
  if (!verdict.ok) return verdict;
  let certPem: string;
  try {
    certPem = signCsr(ca, req.csrPem, { role: "agent", cluster: verdict.record.cluster }, { ...opts, now });
  } catch (e) {
    if (e instanceof CsrRejectedError) return { ok: false, reason: e.reason, message: e.message };
    throw e;
  }
  return {
    ok: true,
    certPem,
    caPem: ca.certPem,
    caFingerprint256: fingerprint256(ca.certPem),
    record: markEnrollmentTokenUsed(verdict.record, now),
  };
}
