// Chooses the page's Socket.IO client, then starts the page (app.js, loaded before this file) with
// it. A file of its own, not an inline <script>: the hub's Content-Security-Policy allows no inline
// code.
//
// By default: the page's own client, public/hub-client.js (loaded before this file; written for
// this project, served by the hub like the page, so the page needs no npm copy and no network).
// With `?client=official` in the page's URL: the official socket.io-client bundle, from the hub's
// local npm copy (`/socket.io/socket.io.min.js`, present once `npm ci --prefix tests` ran) or else
// from the CDN, pinned by its sha384 so the CDN can serve nothing but the very bytes npm ships for
// this version. The policy's script-src names this exact URL (src/http/headers.rs);
// tests/browser/page.test.mjs checks that the hash is the local copy's and that the version
// matches tests/package.json, and drives the page with either client.
"use strict";

(function chooseSocketIoClient() {
  const SOCKET_IO_CDN = {
    src: "https://cdn.socket.io/4.8.1/socket.io.min.js",
    integrity: "sha384-mkQ3/7FUtcGyoppY6bz/PORYoGqOl7/aSUMn2ymDOJcapfS6PHqxhRTMh1RR0Q6+",
  };
  const SOCKET_IO_LOCAL = "/socket.io/socket.io.min.js";

  function load(src, integrity) {
    return new Promise(function (resolve, reject) {
      const script = document.createElement("script");
      script.src = src;
      if (integrity) {
        script.integrity = integrity;
        script.crossOrigin = "anonymous";
      }
      script.onload = function () {
        if (typeof window.io === "function") resolve();
        else reject(new Error(src + " loaded but did not define io"));
      };
      script.onerror = function () {
        reject(new Error("could not load " + src));
      };
      document.head.appendChild(script);
    });
  }

  const app = window.NotificationHubApp;
  const official = new URLSearchParams(window.location.search).get("client") === "official";
  if (!official) {
    if (window.HubClient && typeof window.HubClient.io === "function") {
      app.start(window.HubClient.io, "built-in");
    } else {
      app.fail("The page's Socket.IO client (hub-client.js) could not be loaded.");
    }
    return;
  }
  load(SOCKET_IO_LOCAL)
    .catch(function () {
      return load(SOCKET_IO_CDN.src, SOCKET_IO_CDN.integrity);
    })
    .then(
      function () {
        app.start(window.io, "official");
      },
      function (err) {
        app.fail(
          "The official Socket.IO client could not be loaded (neither " +
            SOCKET_IO_LOCAL + " nor the CDN copy): " + err.message +
            ". Open the page without ?client=official to use its built-in client."
        );
      }
    );
})();
