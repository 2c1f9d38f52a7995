// Verify a Shipwright certificate with Digital Bazaar's libraries, with no network:
// every document the check needs is read from the files given (see docs/employers.md).
//
//   node verify.mjs credential.json did.json revocation.json suspension.json [ob-context.json]
//
// ob-context.json is the Open Badges 3.0 context
// (https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json); by default the copy
// pinned in Shipwright's repository, certificates/contexts/, is used.
// Exit status: 0 valid, 1 not valid (signature, revoked or suspended), 2 usage errors.
import {readFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {securityLoader} from '@digitalbazaar/security-document-loader';
import {verifyCredential} from '@digitalbazaar/vc';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';

const OB_CONTEXT = 'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json';
const [credentialFile, didFile, revocationFile, suspensionFile, obContextFile] = process.argv.slice(2);
if(!suspensionFile) {
  console.error('usage: node verify.mjs credential.json did.json revocation.json suspension.json [ob-context.json]');
  process.exit(2);
}
const read = file => JSON.parse(readFileSync(file, 'utf8'));
const credential = read(credentialFile);
const did = read(didFile);
const revocationList = read(revocationFile);
const suspensionList = read(suspensionFile);
const obContext = read(obContextFile ?? fileURLToPath(
  new URL('../../certificates/contexts/ob-v3p0-context-3.0.3.json', import.meta.url)));

// The DID document, each of its keys, and the two signed status lists, by their ids.
const documents = new Map([[did.id, did], [revocationList.id, revocationList], [suspensionList.id, suspensionList]]);
for(const method of did.verificationMethod) {
  documents.set(method.id, {'@context': did['@context'], ...method});
}
const loader = securityLoader();
loader.addStatic(OB_CONTEXT, obContext);
const contexts = loader.build();
async function documentLoader(url) {
  if(documents.has(url)) {
    return {contextUrl: null, documentUrl: url, document: documents.get(url)};
  }
  return contexts(url); // bundled contexts only; anything else is an error, not a fetch
}

const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022});

// checkStatus answers {verified, results: [{verified, status, credentialStatus}]}:
// `verified` says the signed list could be read and checked, `status` is the bit
// (true: set). A set bit does not make verifyCredential fail: read it here.
function statusOf(statusResult, purpose) {
  const result = statusResult?.results?.find(r => r.credentialStatus?.statusPurpose === purpose);
  if(!statusResult?.verified || !result) {
    return `NOT checked: ${statusResult?.error?.message ?? 'no result'}`;
  }
  return result.status ? (purpose === 'revocation' ? 'REVOKED' : 'SUSPENDED') : `not ${purpose === 'revocation' ? 'revoked' : 'suspended'}`;
}

const result = await verifyCredential({credential, suite, documentLoader, checkStatus});
const signature = result.results?.[0]?.verified === true;
console.log(`signature and issuer key: ${signature ? 'verified' : 'NOT verified'}`);
for(const error of [result.error, ...(result.results ?? []).map(r => r.error)].filter(Boolean)) {
  console.log(`  ${error.message ?? error}`);
}
const revocation = signature ? statusOf(result.statusResult, 'revocation') : 'NOT checked';
console.log(`revocation: ${revocation}`);

// Shipwright's credentials carry one status entry, for revocation (a published
// contract); the issuer's suspension list uses the same index. Check it the same way.
const revocationEntry = [credential.credentialStatus].flat().find(
  entry => entry?.statusPurpose === 'revocation');
const suspensionEntry = {
  type: 'BitstringStatusListEntry',
  statusPurpose: 'suspension',
  statusListIndex: revocationEntry?.statusListIndex,
  statusListCredential: suspensionList.id
};
const suspensionResult = await checkStatus({
  credential: {...credential, credentialStatus: suspensionEntry}, documentLoader, suite
});
const suspended = statusOf(suspensionResult, 'suspension');
console.log(`suspension: ${suspended}`);

const valid = result.verified && revocation === 'not revoked' && suspended === 'not suspended';
console.log(`verdict: ${valid ? 'valid' : 'NOT VALID'}`);
process.exit(valid ? 0 : 1);
