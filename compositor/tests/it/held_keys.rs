//! The seat gets its keyboard only once the first client frame is on screen (compiling the
//! keymap earlier would delay that frame under TCG). A key pressed before then, or before
//! the client has asked for its wl_keyboard, is held and delivered in order, not lost.

use crate::common::*;
use crate::fixture::Fixture;

#[test]
fn a_key_pressed_before_the_first_frame_is_held_not_lost() {
    // Name order: chelsea.png first, then ginger-kitten.jpg.
    let env = [("NEKOS_ORDER", "name"), ("NEKOS_INTERVAL", "1000")];
    let mut fx = Fixture::start(320, 240, &cats_dir(), &env);
    assert!(
        fx.comp.state.nek.keyboard.is_none(),
        "no keyboard before the first frame"
    );
    fx.press(106); // Right, before the viewer has even connected
    fx.run_until_frames(1);
    assert!(
        fx.comp.state.nek.keyboard.is_some(),
        "the keyboard comes with the first frame"
    );
    fx.run_until_frames(2);
    assert_eq!(
        fx.shown(),
        ["chelsea.png", "ginger-kitten.jpg"],
        "{:?}",
        fx.lines
    );
}
