// Starts the browser client: fetches encchat.wasm (served gzipped) and
// runs it with Go's wasm_exec.js. If it cannot, the status line says why,
// with the server's own words (how to build the client, when it is not).
"use strict";
(async function () {
  const status = document.getElementById("status");
  function fail(text) {
    document.body.dataset.state = "failed";
    status.textContent = text;
  }
  try {
    const resp = await fetch("encchat.wasm");
    if (!resp.ok) {
      fail("The browser client did not load (" + resp.status + "): " + (await resp.text()).trim());
      return;
    }
    const go = new Go();
    const { instance } = await WebAssembly.instantiateStreaming(resp, go.importObject);
    await go.run(instance);
    fail("The browser client stopped: reload the page.");
  } catch (e) {
    fail("The browser client did not load: " + e.message);
  }
})();
