;; A reward shaper written by hand against contract 0.1.0 (host/wit/), for the sandbox tests: things
;; a plugin built with the SDK cannot do (declare tables and extra memories, wait in its start
;; function, describe itself with control characters). Being a 0.1 shaper, it also shows that the
;; host keeps loading them.
;;
;; host/tests/common/wat.rs turns it into a component: it fills in the plugin's name and its length
;; and puts the module fields a test adds at the end, then embeds the `nas:plugin@0.1.0` reward world
;; (plus the WASI clock and poll interfaces used below) with wit-component.
(module
  (import "wasi:clocks/monotonic-clock@0.2.0" "subscribe-duration" (func $subscribe_duration (param i64) (result i32)))
  (import "wasi:io/poll@0.2.0" "[method]pollable.block" (func $block (param i32)))

  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))

  ;; plugin-info: three (pointer, length) pairs at 64; the strings from 128 on.
  (data (i32.const 128) "{name}")
  (data (i32.const 1024) "0.1.0")
  (data (i32.const 1040) "hand-written WAT reward shaper")

  (func (export "nas:plugin/reward@0.1.0#describe") (result i32)
    (i32.store (i32.const 64) (i32.const 128))
    (i32.store (i32.const 68) (i32.const {name_len}))
    (i32.store (i32.const 72) (i32.const 1024))
    (i32.store (i32.const 76) (i32.const 5))
    (i32.store (i32.const 80) (i32.const 1040))
    (i32.store (i32.const 84) (i32.const 30))
    (i32.const 64))

  ;; init(config) -> result<_, string>: ok.
  (func (export "nas:plugin/reward@0.1.0#init") (param i32 i32) (result i32)
    (i32.store8 (i32.const 256) (i32.const 0))
    (i32.const 256))

  ;; shape(evaluation) -> result<f64, string>: ok(accuracy).
  (func (export "nas:plugin/reward@0.1.0#shape")
    (param $accuracy f64) (param i64 i32 i32 i32 i32 i32 f64 i32 i32 i32) (result i32)
    (i32.store8 (i32.const 512) (i32.const 0))
    (f64.store (i32.const 520) (local.get $accuracy))
    (i32.const 512))

  ;; A bump allocator: the host writes the strings and lists it passes here.
  (func (export "cabi_realloc") (param i32 i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow
        (i32.add (i32.shr_u (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))))))
    (local.get $ptr))

  ;; Waits on the host's clock for as long as it can ask: u64::MAX nanoseconds.
  (func $sleep_forever
    (call $block (call $subscribe_duration (i64.const -1))))

  ;; {extra}
)
