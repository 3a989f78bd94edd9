;; add_headers.wat: the smallest useful proxy-wasm HTTP filter, the module
;; of the example store's add-headers extension. It adds the request header
;;   x-wasmxds-example: served-by-wasmxds
;; to every request and lets it continue. ABI: proxy-wasm 0.2.1.
;;
;; Build (Debian: apt-get install wabt):
;;   wat2wasm add_headers.wat -o add_headers.wasm
;; tests/check_app checks that add_headers.wasm is exactly what this file
;; compiles to (when wat2wasm is installed) and that the example store's
;; sha256 is that of add_headers.wasm.
(module
  (import "env" "proxy_add_header_map_value"
    (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; The header's name and value.
  (data (i32.const 1024) "x-wasmxds-example")
  (data (i32.const 1056) "served-by-wasmxds")
  ;; Bump allocator for the host's copies, above the data.
  (global $next (mut i32) (i32.const 4096))

  (func (export "proxy_abi_version_0_2_1"))

  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (local.get $p) (local.get $size)))
    ;; Grow when the block ends past the memory (64 KiB pages).
    (if (i32.gt_u (global.get $next)
                  (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.lt_s
              (memory.grow
                (i32.add (i32.shr_u (local.get $size) (i32.const 16))
                         (i32.const 1)))
              (i32.const 0))
          (then (return (i32.const 0))))))
    (local.get $p))

  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (i32.const 1))

  ;; Request headers: map type 0; returns Action::Continue (0).
  (func (export "proxy_on_request_headers")
    (param i32 i32 i32) (result i32)
    (drop (call $add_header (i32.const 0)
                            (i32.const 1024) (i32.const 17)
                            (i32.const 1056) (i32.const 17)))
    (i32.const 0))

  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param i32))
  (func (export "proxy_on_delete") (param i32)))
