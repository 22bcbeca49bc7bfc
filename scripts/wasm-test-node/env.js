// The wasm module "env" for the SDK's wasm test-suite under Node (scripts/test-wasm.sh puts
// this directory on NODE_PATH).
//
// The test module links the proxy-wasm crate. Its exported `proxy_on_*` callbacks (which no
// test calls) reference host functions imported from the wasm module "env"
// (proxy_get_buffer_bytes, proxy_done, proxy_http_call, ...), so the module carries those
// imports, and wasm-bindgen's generated JS satisfies them with `require("env")`.
//
// There is no proxy-wasm host here and the tests exercise pure logic only. Every
// `proxy_*` name resolves, so that the module can be instantiated; calling one throws, so a
// test that reaches the host fails loudly instead of getting an invented answer.
"use strict";

module.exports = new Proxy(
  {},
  {
    get(_target, name) {
      if (typeof name !== "string" || !name.startsWith("proxy_")) {
        return undefined;
      }
      return function () {
        throw new Error(
          `host function env.${name} was called in the wasm unit tests, ` +
            "where there is no proxy-wasm host"
        );
      };
    },
  }
);
