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
