//! The embedded US keymap as tables compiled by `build.rs`, and kbvm's state machine built
//! from them with kbvm's public builder: the guest never runs the XKB parser (see build.rs
//! for the cost that avoids). The tests compare everything here with a run-time compile of
//! the same text, key event by key event.

use kbvm::builder::{Builder, GroupBuilder, KeyBuilder, LevelBuilder, Redirect};
use kbvm::routine::{Routine, RoutineBuilder, Var};
use kbvm::state_machine::StateMachine;
use kbvm::{Components, GroupType, ModifierIndex, ModifierMask};

pub(super) struct KeyType {
    pub(super) mask: u32,
    pub(super) mappings: &'static [Mapping],
}

pub(super) struct Mapping {
    pub(super) mods: u32,
    pub(super) preserved: u32,
    pub(super) level: usize,
}

pub(super) struct Key {
    pub(super) code: u32,
    pub(super) repeats: bool,
    pub(super) groups: &'static [Option<Group>],
}

pub(super) struct Group {
    /// Index into `TYPES`.
    pub(super) ty: usize,
    pub(super) levels: &'static [Level],
}

pub(super) struct Level {
    pub(super) syms: &'static [u32],
    pub(super) actions: &'static [Action],
}

/// The XKB actions the US keymap uses; build.rs refuses a keymap with any other.
/// Group deltas are two's complement, as kbvm keeps them.
pub(super) enum Action {
    SetMods { mods: u32, clear_locks: bool },
    LockMods { mods: u32, lock: bool, unlock: bool },
    SetGroup { delta: u32, clear_locks: bool },
    LockGroup { delta: u32 },
}

/// An LED's rule, equivalent to kbvm's `IndicatorMatcher` (whose fields are private:
/// build.rs reads each term back by probing it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LedMatcher {
    /// Indexed by `(group_pressed != 0) | (group_latched != 0) << 1`.
    pub(super) group_table: [bool; 4],
    pub(super) mods_pressed: u32,
    pub(super) mods_latched: u32,
    pub(super) mods_locked: u32,
    pub(super) mods: u32,
    /// Bit n: lit when the locked group is n.
    pub(super) group_locked: u32,
    /// Bit n: lit when the effective group is n.
    pub(super) group: u32,
    pub(super) controls: u32,
}

impl LedMatcher {
    #[allow(dead_code)] // used by the generated table when an LED is always lit
    pub(super) const ALWAYS: LedMatcher = LedMatcher {
        group_table: [true; 4],
        mods_pressed: 0,
        mods_latched: 0,
        mods_locked: 0,
        mods: 0,
        group_locked: 0,
        group: 0,
        controls: 0,
    };

    pub(super) fn matches(&self, c: &Components) -> bool {
        let in_mask = |mask: u32, index: u32| index < u32::BITS && mask & (1 << index) != 0;
        let group_term =
            usize::from(c.group_pressed.0 != 0) | usize::from(c.group_latched.0 != 0) << 1;
        self.group_table[group_term]
            || self.mods_pressed & c.mods_pressed.0 != 0
            || self.mods_latched & c.mods_latched.0 != 0
            || self.mods_locked & c.mods_locked.0 != 0
            || self.mods & c.mods.0 != 0
            || in_mask(self.group_locked, c.group_locked.0)
            || in_mask(self.group, c.group.0)
            || self.controls & c.controls.0 != 0
    }
}

/// The text clients get in `wl_keyboard.keymap`: kbvm's formatting of `keymaps/us.xkb`.
pub(super) const TEXT: &str = include_str!(concat!(env!("OUT_DIR"), "/us.formatted.xkb"));

include!(concat!(env!("OUT_DIR"), "/us_prebuilt.rs"));

/// kbvm's state machine for the tables above: what `Keymap::to_builder` gives for the
/// parsed keymap (the tests check the two agree on every key event).
pub(super) fn state_machine() -> StateMachine {
    let mut builder = Builder::default();
    builder.set_ctrl(Some(ModifierIndex::CONTROL));
    builder.set_caps(Some(ModifierIndex::LOCK));
    let types: Vec<GroupType> = TYPES
        .iter()
        .map(|t| {
            let mut ty = GroupType::builder(ModifierMask(t.mask));
            for m in t.mappings {
                ty.map_preserve(ModifierMask(m.mods), ModifierMask(m.preserved), m.level);
            }
            ty.build()
        })
        .collect();
    for key in KEYS {
        let mut kb = KeyBuilder::new(kbvm::Keycode::from_x11(key.code));
        kb.repeats(key.repeats);
        kb.redirect(Redirect::Wrap);
        for (index, group) in key.groups.iter().enumerate() {
            let Some((group, ty)) = group.as_ref().and_then(|g| Some((g, types.get(g.ty)?))) else {
                continue;
            };
            let mut gb = GroupBuilder::new(index, ty);
            for (index, level) in group.levels.iter().enumerate() {
                // An empty level is no level (as kbvm's own conversion has it).
                if level.syms.is_empty() && level.actions.is_empty() {
                    continue;
                }
                let syms: Vec<kbvm::Keysym> = level.syms.iter().map(|s| kbvm::Keysym(*s)).collect();
                let mut lb = LevelBuilder::new(index);
                lb.keysyms(&syms);
                if !level.actions.is_empty() {
                    lb.routine(&routine(key.code, level.actions));
                }
                gb.add_level(lb);
            }
            kb.add_group(gb);
        }
        builder.add_key(kb);
    }
    builder.build_state_machine()
}

/// The routine a level's actions run: the key goes down, each action does its press part
/// in order; on release the key goes up and the actions undo in reverse order. All four
/// actions keep latched modifiers and groups (a key without actions has no routine).
fn routine(code: u32, actions: &[Action]) -> Routine {
    let mut b = Routine::builder();
    let key = b.allocate_var();
    b.load_lit(key, code).key_down(key);
    press_then_release(&mut b, actions, key);
    b.build()
}

fn press_then_release(b: &mut RoutineBuilder, actions: &[Action], key: Var) {
    let Some((first, rest)) = actions.split_first() else {
        b.on_release().key_up(key);
        return;
    };
    match *first {
        Action::SetMods { mods, clear_locks } => {
            let mask = b.allocate_var();
            b.load_lit(mask, mods).mods_pressed_inc(mask);
            press_then_release(b, rest, key);
            b.mods_pressed_dec(mask);
            if clear_locks {
                // Releasing the key unlocks its modifiers, unless another key was
                // pressed while it was held.
                let [locked, other_key] = b.allocate_vars();
                b.later_key_actuated_load(other_key);
                let skip = b.prepare_skip_if(other_key);
                b.mods_locked_load(locked)
                    .bit_nand(locked, locked, mask)
                    .mods_locked_store(locked)
                    .finish_skip(skip);
            }
        }
        Action::LockMods { mods, lock, unlock } => {
            let [mask, locked_before] = b.allocate_vars();
            b.load_lit(mask, mods).mods_pressed_inc(mask);
            if lock || unlock {
                b.mods_locked_load(locked_before);
            }
            if lock {
                let locked = b.allocate_var();
                b.bit_or(locked, locked_before, mask)
                    .mods_locked_store(locked);
            }
            press_then_release(b, rest, key);
            b.mods_pressed_dec(mask);
            if unlock {
                // Unlock on release only what was locked before the press.
                let [locked, was_locked] = b.allocate_vars();
                b.mods_locked_load(locked)
                    .bit_and(was_locked, locked_before, mask)
                    .bit_nand(locked, locked, was_locked)
                    .mods_locked_store(locked);
            }
        }
        Action::SetGroup { delta, clear_locks } => {
            let [by, group] = b.allocate_vars();
            b.load_lit(by, delta)
                .group_pressed_load(group)
                .add(group, group, by)
                .group_pressed_store(group);
            press_then_release(b, rest, key);
            b.group_pressed_load(group)
                .sub(group, group, by)
                .group_pressed_store(group);
            if clear_locks {
                let [other_key, first_group] = b.allocate_vars();
                b.later_key_actuated_load(other_key);
                let skip = b.prepare_skip_if(other_key);
                b.load_lit(first_group, 0)
                    .group_locked_store(first_group)
                    .finish_skip(skip);
            }
        }
        Action::LockGroup { delta } => {
            let [by, group] = b.allocate_vars();
            b.load_lit(by, delta)
                .group_locked_load(group)
                .add(group, group, by)
                .group_locked_store(group);
            press_then_release(b, rest, key);
        }
    }
}
