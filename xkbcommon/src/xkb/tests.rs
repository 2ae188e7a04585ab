#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

const EVDEV_OFFSET: u32 = 8;

fn us() -> Keymap {
    let ctx = Context::new(CONTEXT_NO_FLAGS);
    Keymap::new_from_names(
        &ctx,
        "evdev",
        "pc105",
        "us",
        "",
        None,
        KEYMAP_COMPILE_NO_FLAGS,
    )
    .expect("embedded keymap compiles")
}

fn kc(evdev: u32) -> Keycode {
    Keycode::new(evdev + EVDEV_OFFSET)
}

fn tap(state: &mut State, evdev: u32) {
    state.update_key(kc(evdev), KeyDirection::Down);
    state.update_key(kc(evdev), KeyDirection::Up);
}

#[test]
fn keymap_text_round_trip() {
    let ctx = Context::new(CONTEXT_NO_FLAGS);
    let a = us();
    let text = a.get_as_string(KEYMAP_FORMAT_TEXT_V1);
    assert!(text.starts_with("xkb_keymap"), "{}", &text[..40]);
    let b = Keymap::new_from_string(&ctx, text.clone(), KEYMAP_FORMAT_TEXT_V1, 0).unwrap();
    assert_eq!(b.get_as_string(KEYMAP_FORMAT_TEXT_V1), text);
    assert_eq!(b.num_layouts(), 1);
    assert_eq!(b.layout_get_name(0), "English (US)");
    assert_eq!(b.layouts().collect::<Vec<_>>(), vec!["English (US)"]);
}

#[test]
fn keymap_from_fd_with_trailing_nul() {
    use std::io::Write;
    let ctx = Context::new(CONTEXT_NO_FLAGS);
    let text = us().get_as_string(KEYMAP_FORMAT_TEXT_V1);
    let path = std::env::temp_dir().join(format!("xkb-test-{}", std::process::id()));
    let mut f = fs::File::create(&path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.write_all(b"\0").unwrap();
    drop(f);
    let fd = OwnedFd::from(fs::File::open(&path).unwrap());
    let km = unsafe { Keymap::new_from_fd(&ctx, fd, text.len() + 1, KEYMAP_FORMAT_TEXT_V1, 0) }
        .unwrap()
        .unwrap();
    let _ = fs::remove_file(&path);
    assert_eq!(km.get_as_string(KEYMAP_FORMAT_TEXT_V1), text);
}

#[test]
fn garbage_keymap_is_rejected() {
    let ctx = Context::new(CONTEXT_NO_FLAGS);
    assert!(Keymap::new_from_string(&ctx, "xkb_keymap { nonsense".into(), 1, 0).is_none());
}

#[test]
fn indices() {
    let km = us();
    assert_eq!(km.mod_get_index(MOD_NAME_SHIFT), 0);
    assert_eq!(km.mod_get_index(MOD_NAME_CAPS), 1);
    assert_eq!(km.mod_get_index(MOD_NAME_CTRL), 2);
    assert_eq!(km.mod_get_index(MOD_NAME_ALT), 3);
    assert_eq!(km.mod_get_index(MOD_NAME_LOGO), 6);
    assert_eq!(km.mod_get_index("NoSuchMod"), MOD_INVALID);
    assert_ne!(km.led_get_index(LED_NAME_CAPS), LED_INVALID);
    assert_ne!(km.led_get_index(LED_NAME_NUM), LED_INVALID);
    assert_ne!(km.led_get_index(LED_NAME_SCROLL), LED_INVALID);
    assert_eq!(km.led_get_index("Nope"), LED_INVALID);
    assert_eq!(km.mod_get_name(2), "Control");
    assert!(km.key_repeats(kc(30)));
}

#[test]
fn modifier_state() {
    let km = us();
    let mut st = State::new(&km);
    // Left shift down: depressed + effective change.
    let ch = st.update_key(kc(42), KeyDirection::Down);
    assert_ne!(ch & STATE_MODS_DEPRESSED, 0);
    assert_ne!(ch & STATE_MODS_EFFECTIVE, 0);
    assert!(st.mod_name_is_active(MOD_NAME_SHIFT, STATE_MODS_EFFECTIVE));
    assert!(st.mod_name_is_active(MOD_NAME_SHIFT, STATE_MODS_DEPRESSED));
    assert!(!st.mod_name_is_active(MOD_NAME_SHIFT, STATE_MODS_LOCKED));
    assert_eq!(st.serialize_mods(STATE_MODS_DEPRESSED), 1);
    assert_eq!(st.key_get_utf8(kc(30)), "A");
    assert_eq!(st.key_get_utf8(kc(2)), "!");
    st.update_key(kc(42), KeyDirection::Up);
    assert!(!st.mod_name_is_active(MOD_NAME_SHIFT, STATE_MODS_EFFECTIVE));
    assert_eq!(st.key_get_utf8(kc(30)), "a");

    // Caps lock locks Lock and lights the LED.
    let caps_led = km.led_get_index(LED_NAME_CAPS);
    assert!(!st.led_index_is_active(caps_led));
    st.update_key(kc(58), KeyDirection::Down);
    let ch = st.update_key(kc(58), KeyDirection::Up);
    let _ = ch;
    assert!(st.mod_name_is_active(MOD_NAME_CAPS, STATE_MODS_LOCKED));
    assert!(st.led_index_is_active(caps_led));
    assert_eq!(st.serialize_mods(STATE_MODS_LOCKED), 2);
    assert_eq!(st.key_get_utf8(kc(30)), "A");
    assert_eq!(st.key_get_utf8(kc(2)), "1");
    st.update_key(kc(42), KeyDirection::Down);
    assert_eq!(st.key_get_utf8(kc(30)), "a");
    st.update_key(kc(42), KeyDirection::Up);
    tap(&mut st, 58);
    assert!(!st.mod_name_is_active(MOD_NAME_CAPS, STATE_MODS_EFFECTIVE));
    assert!(!st.led_index_is_active(caps_led));

    // Control turns letters into control characters.
    st.update_key(kc(29), KeyDirection::Down);
    assert!(st.mod_name_is_active(MOD_NAME_CTRL, STATE_MODS_EFFECTIVE));
    assert_eq!(st.key_get_utf8(kc(46)), "\u{3}");
    assert_eq!(st.key_get_one_sym(kc(46)), Keysym::new(xkeysym::key::c));
    st.update_key(kc(29), KeyDirection::Up);

    // Num lock switches the keypad to digits.
    assert_eq!(
        st.key_get_one_sym(kc(79)),
        Keysym::new(xkeysym::key::KP_End)
    );
    tap(&mut st, 69);
    assert!(st.mod_name_is_active(MOD_NAME_NUM, STATE_MODS_LOCKED));
    assert!(st.led_index_is_active(km.led_get_index(LED_NAME_NUM)));
    assert_eq!(st.key_get_one_sym(kc(79)), Keysym::new(xkeysym::key::KP_1));
    assert_eq!(st.key_get_utf8(kc(79)), "1");

    // update_mask sets the state directly, as smithay's set_modifier_state does.
    let ch = st.update_mask(0, 0, 0, 0, 0, 0);
    assert_ne!(ch & STATE_MODS_LOCKED, 0);
    assert_eq!(st.serialize_mods(STATE_MODS_EFFECTIVE), 0);
    st.update_mask(1 << 2, 0, 0, 0, 0, 0);
    assert!(st.mod_name_is_active(MOD_NAME_CTRL, STATE_MODS_DEPRESSED));
    assert_eq!(st.serialize_layout(STATE_LAYOUT_EFFECTIVE), 0);
    assert!(st.layout_index_is_active(0, STATE_LAYOUT_EFFECTIVE));
}

#[test]
fn us_keycodes_to_keysyms_and_utf8() {
    use xkeysym::key as k;
    let km = us();
    let st = State::new(&km);
    // (evdev code, keysym, UTF-8)
    let table: &[(u32, u32, &str)] = &[
        (1, k::Escape, "\u{1b}"),
        (2, k::_1, "1"),
        (11, k::_0, "0"),
        (12, k::minus, "-"),
        (13, k::equal, "="),
        (14, k::BackSpace, "\u{8}"),
        (15, k::Tab, "\t"),
        (16, k::q, "q"),
        (25, k::p, "p"),
        (26, k::bracketleft, "["),
        (28, k::Return, "\r"),
        (29, k::Control_L, ""),
        (30, k::a, "a"),
        (39, k::semicolon, ";"),
        (40, k::apostrophe, "'"),
        (41, k::grave, "`"),
        (42, k::Shift_L, ""),
        (43, k::backslash, "\\"),
        (44, k::z, "z"),
        (51, k::comma, ","),
        (52, k::period, "."),
        (53, k::slash, "/"),
        (56, k::Alt_L, ""),
        (57, k::space, " "),
        (58, k::Caps_Lock, ""),
        (59, k::F1, ""),
        (102, k::Home, ""),
        (103, k::Up, ""),
        (105, k::Left, ""),
        (106, k::Right, ""),
        (108, k::Down, ""),
        (107, k::End, ""),
        (111, k::Delete, "\u{7f}"),
        (125, k::Super_L, ""),
    ];
    for &(code, sym, utf8) in table {
        assert_eq!(
            st.key_get_one_sym(kc(code)),
            Keysym::new(sym),
            "evdev {code}: got {}",
            keysym_get_name(st.key_get_one_sym(kc(code)))
        );
        assert_eq!(st.key_get_utf8(kc(code)), utf8, "evdev {code}");
    }
    assert_eq!(keysym_get_name(Keysym::new(k::Right)), "Right");
    assert_eq!(km.key_get_syms_by_level(kc(30), 0, 1), &[Keysym::new(k::A)]);
    assert_eq!(st.key_get_syms(kc(0x2ff)), &[] as &[Keysym]);
}

// The prebuilt US keymap (build.rs) against a run-time compile of the same text: kbvm's
// parser is the judge of the tables, kbvm's own conversion the judge of the state machine.

fn compiled_us() -> Keymap {
    // Compiled once: the property tests below would otherwise parse it hundreds of times.
    static COMPILED: std::sync::LazyLock<Keymap> = std::sync::LazyLock::new(|| {
        Keymap::compile(US_KEYMAP.as_bytes()).expect("embedded keymap compiles")
    });
    COMPILED.clone()
}

#[test]
fn new_from_names_gives_the_prebuilt_keymap_not_a_parse() {
    // The prebuilt keymap carries prebuilt LED rules; a parsed one carries kbvm's.
    let km = us();
    assert!(!km.inner.leds.is_empty());
    assert!(
        km.inner
            .leds
            .iter()
            .all(|l| matches!(l.matcher, LedRule::Prebuilt(_)))
    );
}

#[test]
fn the_prebuilt_keymap_has_the_compiled_keymaps_text_keys_modifiers_layouts_and_leds() {
    let (pre, comp) = (us(), compiled_us());
    assert_eq!(
        pre.get_as_string(KEYMAP_FORMAT_TEXT_V1),
        comp.get_as_string(KEYMAP_FORMAT_TEXT_V1)
    );
    assert_eq!(pre.min_keycode(), comp.min_keycode());
    assert_eq!(pre.max_keycode(), comp.max_keycode());
    let mut defined = (Vec::new(), Vec::new());
    pre.key_for_each(|_, k| defined.0.push(k));
    comp.key_for_each(|_, k| defined.1.push(k));
    assert_eq!(defined.0, defined.1);
    assert!(defined.0.len() > 100, "{} keys", defined.0.len());
    for raw in 0..=comp.max_keycode().raw() + 2 {
        let k = Keycode::new(raw);
        assert_eq!(pre.key_repeats(k), comp.key_repeats(k), "key {raw}");
        assert_eq!(
            pre.num_layouts_for_key(k),
            comp.num_layouts_for_key(k),
            "key {raw}"
        );
        for layout in 0..comp.num_layouts_for_key(k) + 1 {
            let levels = comp.num_levels_for_key(k, layout);
            assert_eq!(pre.num_levels_for_key(k, layout), levels, "key {raw}");
            for level in 0..levels + 1 {
                assert_eq!(
                    pre.key_get_syms_by_level(k, layout, level),
                    comp.key_get_syms_by_level(k, layout, level),
                    "key {raw} layout {layout} level {level}"
                );
            }
        }
        let (p, c) = (pre.key(k), comp.key(k));
        assert_eq!(p.is_some(), c.is_some(), "key {raw}");
        if let (Some(p), Some(c)) = (p, c) {
            for (pg, cg) in p.groups.iter().zip(&c.groups) {
                let (pg, cg) = (pg.as_ref().unwrap(), cg.as_ref().unwrap());
                assert_eq!(pg.type_mask, cg.type_mask, "key {raw}");
                assert_eq!(pg.mappings, cg.mappings, "key {raw}");
                assert_eq!(pg.preserved, cg.preserved, "key {raw}");
            }
        }
    }
    assert_eq!(pre.inner.mods, comp.inner.mods);
    assert_eq!(pre.inner.layouts, comp.inner.layouts);
    let names = |km: &Keymap| {
        km.inner
            .leds
            .iter()
            .map(|l| l.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&pre), names(&comp));
}

fn any_components() -> impl proptest::strategy::Strategy<Value = Components> {
    use proptest::prelude::*;
    // Small values often (the interesting ones), any value sometimes.
    let word = prop_oneof![0u32..40, any::<u32>(), (0u32..32).prop_map(|b| 1 << b)];
    (
        [word.clone(), word.clone(), word.clone(), word.clone()],
        [word.clone(), word.clone(), word.clone(), word.clone()],
        word,
    )
        .prop_map(|(m, g, controls)| {
            let mut c = Components::default();
            c.mods_pressed = ModifierMask(m[0]);
            c.mods_latched = ModifierMask(m[1]);
            c.mods_locked = ModifierMask(m[2]);
            c.mods = ModifierMask(m[3]);
            c.group_pressed = GroupDelta(g[0]);
            c.group_latched = GroupDelta(g[1]);
            c.group_locked = GroupIndex(g[2]);
            c.group = GroupIndex(g[3]);
            c.controls = kbvm::ControlsMask(controls);
            c
        })
}

/// XKB keycodes: the keys with actions most often (the locks most of all, so that lock,
/// unlock and clear-locks sequences happen), any key the keymap defines, and codes it does
/// not define.
fn any_key_events() -> impl proptest::strategy::Strategy<Value = Vec<(u32, bool)>> {
    use proptest::prelude::*;
    let locks = [66u32, 77, 203, 92];
    let modifiers = [50u32, 62, 37, 105, 64, 108, 133, 134, 204, 205, 206, 207];
    let key = prop_oneof![
        4 => proptest::sample::select(locks.to_vec()),
        4 => proptest::sample::select(modifiers.to_vec()),
        2 => 0u32..260,
        1 => any::<u32>(),
    ];
    proptest::collection::vec((key, any::<bool>()), 0..64)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    #[test]
    fn every_prebuilt_led_rule_lights_exactly_when_kbvms_does(c in any_components()) {
        let (pre, comp) = (us(), compiled_us());
        for (p, k) in pre.inner.leds.iter().zip(&comp.inner.leds) {
            proptest::prop_assert_eq!(p.matcher.matches(&c), k.matcher.matches(&c), "LED {}", p.name);
        }
    }

    #[test]
    fn the_prebuilt_state_machine_follows_kbvms_key_by_key(events in any_key_events()) {
        let (pre, comp) = (us(), compiled_us());
        let (mut a, mut b) = (State::new(&pre), State::new(&comp));
        for (code, down) in events {
            let k = Keycode::new(code);
            let dir = if down { KeyDirection::Down } else { KeyDirection::Up };
            proptest::prop_assert_eq!(a.update_key(k, dir), b.update_key(k, dir), "key {} {:?}", code, dir);
            proptest::prop_assert_eq!(a.components, b.components, "after key {} {:?}", code, dir);
            proptest::prop_assert_eq!(a.leds_mask(), b.leds_mask());
            for probe in [38u32, 10, 24, 65, 79, 36] {
                let p = Keycode::new(probe);
                proptest::prop_assert_eq!(a.key_get_syms(p), b.key_get_syms(p), "probe {}", probe);
                proptest::prop_assert_eq!(a.key_get_utf8(p), b.key_get_utf8(p), "probe {}", probe);
            }
        }
    }
}
