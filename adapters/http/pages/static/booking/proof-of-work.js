/* The booking's proof of work: find a nonce such that SHA-256("<challenge>:<nonce>")
   begins with the challenge's number of zero bits (as service_appointment_mails checks).
   It runs in small slices while the person types; sending waits for it, with a status
   that screen readers announce. Pure JavaScript SHA-256: the inputs are short ASCII
   strings, and a synchronous hash needs no secure context. */
(function () {
  "use strict";

  var K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);
  var W = new Uint32Array(64);
  var H = new Uint32Array(8);

  /* The first word of SHA-256 of an ASCII string is enough to count up to 32 zero bits;
     the whole digest is returned for the rarer stronger challenges. */
  function sha256(text) {
    var length = text.length;
    var blocks = ((length + 9 + 63) >> 6);
    var words = new Uint32Array(blocks * 16);
    var i;
    for (i = 0; i < length; i++) {
      words[i >> 2] |= (text.charCodeAt(i) & 0xff) << (24 - (i & 3) * 8);
    }
    words[length >> 2] |= 0x80 << (24 - (length & 3) * 8);
    words[blocks * 16 - 1] = length * 8;
    H[0] = 0x6a09e667; H[1] = 0xbb67ae85; H[2] = 0x3c6ef372; H[3] = 0xa54ff53a;
    H[4] = 0x510e527f; H[5] = 0x9b05688c; H[6] = 0x1f83d9ab; H[7] = 0x5be0cd19;
    for (var block = 0; block < blocks; block++) {
      var t;
      for (t = 0; t < 16; t++) { W[t] = words[block * 16 + t]; }
      for (t = 16; t < 64; t++) {
        var w15 = W[t - 15], w2 = W[t - 2];
        var s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
        var s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
        W[t] = (W[t - 16] + s0 + W[t - 7] + s1) | 0;
      }
      var a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
      for (t = 0; t < 64; t++) {
        var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        var ch = (e & f) ^ (~e & g);
        var temp1 = (h + S1 + ch + K[t] + W[t]) | 0;
        var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        var maj = (a & b) ^ (a & c) ^ (b & c);
        var temp2 = (S0 + maj) | 0;
        h = g; g = f; f = e; e = (d + temp1) | 0;
        d = c; c = b; b = a; a = (temp1 + temp2) | 0;
      }
      H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += h;
    }
    return H;
  }

  function zeroBits(digest) {
    var bits = 0;
    for (var i = 0; i < 8; i++) {
      var word = digest[i] >>> 0;
      if (word === 0) { bits += 32; continue; }
      return bits + Math.clz32(word);
    }
    return bits;
  }

  function solve(challenge, bits, done) {
    var nonce = 0;
    var prefix = challenge + ":";
    function slice() {
      var until = Date.now() + 40;
      while (Date.now() < until) {
        for (var n = 0; n < 2000; n++, nonce++) {
          if (zeroBits(sha256(prefix + nonce)) >= bits) { done(String(nonce)); return; }
        }
      }
      setTimeout(slice, 0);
    }
    setTimeout(slice, 0);
  }

  var form = document.querySelector("form[data-proof-of-work]");
  if (!form) { return; }
  var challengeField = form.querySelector("input[name=challenge]");
  var nonceField = form.querySelector("input[name=nonce]");
  var status = document.getElementById("proof");
  var sendWhenReady = false;
  var bits = parseInt(challengeField.getAttribute("data-bits"), 10);
  if (!challengeField.value || !(bits >= 0) || bits > 64) { return; }

  function say(text) {
    if (status) { status.textContent = text; status.classList.remove("field-error"); }
  }

  form.addEventListener("submit", function (event) {
    if (nonceField.value) { return; }
    event.preventDefault();
    sendWhenReady = true;
    say(form.getAttribute("data-preparing"));
    var button = form.querySelector("button[type=submit]");
    if (button) { button.setAttribute("aria-disabled", "true"); }
  });

  try {
    solve(challengeField.value, bits, function (nonce) {
      nonceField.value = nonce;
      if (sendWhenReady) {
        say(form.getAttribute("data-ready"));
        form.submit();
      }
    });
  } catch (error) {
    say(form.getAttribute("data-failed"));
  }
})();
