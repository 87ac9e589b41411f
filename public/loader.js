// Loads the official Socket.IO client, then starts the page (app.js, loaded before this file).
// A file of its own, not an inline <script>: the hub's Content-Security-Policy allows no inline
// code. The client comes from the hub's local npm copy; if the hub has none, from the CDN, pinned
// by its sha384 so the CDN can serve nothing but the very bytes npm ships for this version. The
// policy's script-src names this exact URL (src/http/headers.rs); tests/browser/page.test.mjs
// checks that the hash is the local copy's and that the version matches tests/package.json.
"use strict";

(function loadSocketIoClient() {
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

  load(SOCKET_IO_LOCAL)
    .catch(function () {
      return load(SOCKET_IO_CDN.src, SOCKET_IO_CDN.integrity);
    })
    .then(
      function () {
        window.NotificationHubApp.start();
      },
      function (err) {
        window.NotificationHubApp.fail(
          "The Socket.IO client could not be loaded (neither " +
            SOCKET_IO_LOCAL + " nor the CDN copy): " + err.message
        );
      }
    );
})();
