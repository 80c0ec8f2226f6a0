// Passkeys in the browser: the server's WebAuthn options in, the credential out as JSON (binary as base64url).
// Written out here rather than relying on PublicKeyCredential.parseCreationOptionsFromJSON / toJSON, which not
// every browser the pages support has yet.

export const passkeysSupported = () => Boolean(window.PublicKeyCredential && navigator.credentials);

const fromB64url = (text) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
const toB64url = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function common(credential) {
  return { id: credential.id, rawId: toB64url(credential.rawId), type: credential.type,
           authenticatorAttachment: credential.authenticatorAttachment || null, clientExtensionResults: {} };
}

// A new passkey for the signed-in user (registration's options).
export async function createPasskey(publicKey) {
  const options = { ...publicKey, challenge: fromB64url(publicKey.challenge),
    user: { ...publicKey.user, id: fromB64url(publicKey.user.id) },
    excludeCredentials: (publicKey.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) })) };
  const credential = await navigator.credentials.create({ publicKey: options });
  const response = credential.response;
  return { ...common(credential), response: { clientDataJSON: toB64url(response.clientDataJSON),
    attestationObject: toB64url(response.attestationObject), transports: response.getTransports?.() || null } };
}

// An assertion of one of the passkeys the device holds for this site (a reset's options: no credentials listed).
export async function usePasskey(publicKey) {
  const options = { ...publicKey, challenge: fromB64url(publicKey.challenge),
    allowCredentials: (publicKey.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) })) };
  const credential = await navigator.credentials.get({ publicKey: options });
  const response = credential.response;
  return { ...common(credential), response: { clientDataJSON: toB64url(response.clientDataJSON),
    authenticatorData: toB64url(response.authenticatorData), signature: toB64url(response.signature),
    userHandle: response.userHandle ? toB64url(response.userHandle) : null } };
}

// The person closed the browser's prompt, or no passkey of this site is on the device.
export const wasCancelled = (error) => error?.name === "NotAllowedError" || error?.name === "AbortError";
