// Signing in to /docs from a link (the public pages' "Für Mitarbeitende"), in one window.
//
// Swagger UI's own Authorize button opens the provider in a second window, which a browser
// allows only right after a click on the page itself. A link from another page therefore
// takes this way, with the same client, redirect URI and PKCE (S256):
//   /docs/sign-in          makes a verifier and state, keeps them in this tab's
//                          sessionStorage, and goes to the provider's authorization endpoint;
//   /docs/oauth2-redirect  Swagger UI's redirect page; opened by the provider in this same
//                          window (no opener), it hands the code to the object below
//                          instead, which keeps it and goes on to /docs;
//   /docs                  redeems the code with the verifier at the token endpoint and
//                          gives the token to Swagger UI, as its Authorize button would.
// The configuration comes from this script's data attributes (api_docs.py). Nothing leaves
// the browser but for the provider; the token lives in the page's memory only.
'use strict';
(function () {
  const config = document.currentScript.dataset;
  const KEY = 'akte-docs-sign-in';
  const redirectUri = location.origin + config.redirectPath;

  function swaggerUi() {
    // The `ui` constant of the /docs page's own script (a global binding, not on window).
    return typeof ui === 'undefined' ? null : ui; // eslint-disable-line no-undef
  }

  function base64url(bytes) {
    let text = '';
    bytes.forEach(function (byte) { text += String.fromCharCode(byte); });
    return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function randomText() {
    return base64url(crypto.getRandomValues(new Uint8Array(32)));
  }

  async function start() {
    const verifier = randomText();
    const state = randomText();
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
    sessionStorage.setItem(KEY, JSON.stringify({ verifier: verifier, state: state }));
    const url = new URL(config.authorizationUrl);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: config.clientId,
      redirect_uri: redirectUri,
      scope: config.scopes,
      state: state,
      code_challenge: base64url(new Uint8Array(digest)),
      code_challenge_method: 'S256',
    }).toString();
    location.replace(url.toString());
  }

  function pending() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY) || 'null');
    } catch (error) {
      return null;
    }
  }

  function receive() {
    const saved = pending();
    if (window.opener || !saved) {
      return; // Swagger UI's own flow (a second window): its page does the work.
    }
    // Swagger UI's redirect script reads the code and checks the state against this.
    window.opener = {
      swaggerUIRedirectOauth2: {
        state: saved.state,
        redirectUrl: redirectUri,
        auth: { name: config.scheme, schema: new Map([['flow', 'authorizationCode']]) },
        callback: function (answer) {
          saved.code = answer.auth.code;
          sessionStorage.setItem(KEY, JSON.stringify(saved));
          location.replace(config.docsUrl);
        },
        errCb: function (problem) {
          sessionStorage.removeItem(KEY);
          document.body.textContent = problem.message;
        },
      },
    };
  }

  async function finish() {
    const saved = pending();
    if (!saved || !saved.code) {
      return;
    }
    sessionStorage.removeItem(KEY);
    const answer = await fetch(config.tokenUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: config.clientId,
        code: saved.code,
        redirect_uri: redirectUri,
        code_verifier: saved.verifier,
      }),
    });
    if (!answer.ok) {
      console.warn('akte: the provider did not redeem the sign-in code:', answer.status);
      return;
    }
    const token = await answer.json();
    // Swagger UI is ready once it knows the scheme from the OpenAPI document.
    for (let waited = 0; waited < 60000; waited += 100) {
      const swagger = swaggerUi();
      const schemes = swagger && swagger.authSelectors.definitionsToAuthorize();
      const found = schemes && schemes.find(function (entry) { return entry.has(config.scheme); });
      if (found) {
        swagger.authActions.authorizeOauth2({
          auth: { name: config.scheme, schema: found.get(config.scheme), scopes: config.scopes.split(' ') },
          token: token,
        });
        return;
      }
      await new Promise(function (resolve) { setTimeout(resolve, 100); });
    }
  }

  const path = location.pathname;
  if (path.endsWith('/docs/sign-in')) {
    start();
  } else if (path.endsWith('/docs/oauth2-redirect')) {
    receive();
  } else {
    finish();
  }
})();
