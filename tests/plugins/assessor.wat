;; An assessor written by hand against the current contract, for the tests of answers a plugin built
;; with the SDK cannot give: `assess` returns whatever result and verdict bytes the test fills in
;; ({result_tag}: 0 ok, 1 err; {verdict}: 0 continue, 1 stop; anything else is out of range).
;;
;; host/tests/common/wat.rs fills in the bytes and embeds the `nas:plugin` assessor world with
;; wit-component.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))

  ;; plugin-info: three (pointer, length) pairs at 64; the strings from 128 on.
  (data (i32.const 128) "wat_assessor")
  (data (i32.const 1024) "0.1.0")
  (data (i32.const 1040) "hand-written WAT assessor")
  ;; An error message for {result_tag} = 1.
  (data (i32.const 1100) "no verdict")

  (func (export "nas:plugin/assessor@0.3.0#describe") (result i32)
    (i32.store (i32.const 64) (i32.const 128))
    (i32.store (i32.const 68) (i32.const 12))
    (i32.store (i32.const 72) (i32.const 1024))
    (i32.store (i32.const 76) (i32.const 5))
    (i32.store (i32.const 80) (i32.const 1040))
    (i32.store (i32.const 84) (i32.const 25))
    (i32.const 64))

  ;; init(config) -> result<_, string>: ok.
  (func (export "nas:plugin/assessor@0.3.0#init") (param i32 i32) (result i32)
    (i32.store8 (i32.const 256) (i32.const 0))
    (i32.const 256))

  ;; assess(curve) -> result<verdict, string>: the bytes the test chose.
  (func (export "nas:plugin/assessor@0.3.0#assess")
    (param i32 i32 i32 i32 i32 i32 i32 i64) (result i32)
    (i32.store8 (i32.const 512) (i32.const {result_tag}))
    (i32.store8 (i32.const 516) (i32.const {verdict}))
    (i32.store (i32.const 520) (i32.const 10))
    ;; For an error the payload is a string: (pointer, length) at 516.
    (if (i32.eq (i32.const {result_tag}) (i32.const 1))
      (then
        (i32.store (i32.const 516) (i32.const 1100))
        (i32.store (i32.const 520) (i32.const 10))))
    (i32.const 512))

  ;; completed(curve) -> result<_, string>: ok.
  (func (export "nas:plugin/assessor@0.3.0#completed")
    (param i32 i32 i32 i32 i32 i32 i32 i64) (result i32)
    (i32.store8 (i32.const 768) (i32.const 0))
    (i32.const 768))

  ;; A bump allocator: the host writes the curve's lists and strings here.
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
)
