// MSAL for Node against graphpost's identity platform: client credentials, then the device
// code flow (the test signs the person in on /devicelogin while this polls). Run by
// tests/e2e/test_identity_msal_node.py with NODE_EXTRA_CA_CERTS set to the server's cert.
// argv: base tenant clientId clientSecret publicClientId
import { ConfidentialClientApplication, PublicClientApplication } from "@azure/msal-node";

const [base, tenant, clientId, clientSecret, publicClientId] = process.argv.slice(2);
const host = new URL(base).host;
const authority = `${base}/${tenant}`;
const out = {};

const cca = new ConfidentialClientApplication({
  auth: { clientId, clientSecret, authority, knownAuthorities: [host] },
});
const app = await cca.acquireTokenByClientCredential({
  scopes: ["https://graph.microsoft.com/.default"],
});
out.appToken = app.accessToken;

try {
  const bad = new ConfidentialClientApplication({
    auth: { clientId, clientSecret: "wrong", authority, knownAuthorities: [host] },
  });
  await bad.acquireTokenByClientCredential({ scopes: ["https://graph.microsoft.com/.default"] });
  out.wrongSecret = "accepted";
} catch (error) {
  out.wrongSecret = error.errorCode;
}

const pca = new PublicClientApplication({
  auth: { clientId: publicClientId, authority, knownAuthorities: [host] },
});
const device = await pca.acquireTokenByDeviceCode({
  scopes: ["Mail.Read"],
  deviceCodeCallback: (response) => {
    console.log(JSON.stringify({ userCode: response.userCode, uri: response.verificationUri }));
  },
});
out.userToken = device.accessToken;
out.username = device.account.username;
console.log(JSON.stringify(out));
