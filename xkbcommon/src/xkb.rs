//! The `xkbcommon::xkb` API subset, implemented on kbvm.

use std::borrow::Borrow;
use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::os::unix::io::OwnedFd;
use std::sync::Arc;

use kbvm::state_machine::{Direction, Event, StateMachine};
use kbvm::xkb::diagnostic::Diagnostic;
use kbvm::xkb::keymap::IndicatorMatcher;
use kbvm::{Components, GroupDelta, GroupIndex, ModifierMask};

mod prebuilt;

pub use xkeysym::KeyCode as Keycode;
pub use xkeysym::Keysym;

/// The embedded US keymap, in XKB text format (evdev keycodes + 8).
pub const US_KEYMAP: &str = include_str!("../keymaps/us.xkb");

pub type LayoutIndex = u32;
pub type LayoutMask = u32;
pub type LevelIndex = u32;
pub type ModIndex = u32;
pub type ModMask = u32;
pub type LedIndex = u32;
pub type LedMask = u32;

pub const KEYCODE_INVALID: u32 = 0xffff_ffff;
pub const LAYOUT_INVALID: u32 = 0xffff_ffff;
pub const LEVEL_INVALID: u32 = 0xffff_ffff;
pub const MOD_INVALID: u32 = 0xffff_ffff;
pub const LED_INVALID: u32 = 0xffff_ffff;
pub const KEYCODE_MAX: u32 = 0xffff_fffe;

pub type ContextFlags = u32;
pub const CONTEXT_NO_FLAGS: u32 = 0;
pub const CONTEXT_NO_DEFAULT_INCLUDES: u32 = 1 << 0;
pub const CONTEXT_NO_ENVIRONMENT_NAMES: u32 = 1 << 1;

pub type KeymapCompileFlags = u32;
pub const KEYMAP_COMPILE_NO_FLAGS: u32 = 0;

pub type KeymapFormat = u32;
pub const KEYMAP_FORMAT_TEXT_V1: u32 = 1;
pub const KEYMAP_FORMAT_USE_ORIGINAL: u32 = 0xffff_ffff;

pub type StateComponent = u32;
pub const STATE_MODS_DEPRESSED: u32 = 1 << 0;
pub const STATE_MODS_LATCHED: u32 = 1 << 1;
pub const STATE_MODS_LOCKED: u32 = 1 << 2;
pub const STATE_MODS_EFFECTIVE: u32 = 1 << 3;
pub const STATE_LAYOUT_DEPRESSED: u32 = 1 << 4;
pub const STATE_LAYOUT_LATCHED: u32 = 1 << 5;
pub const STATE_LAYOUT_LOCKED: u32 = 1 << 6;
pub const STATE_LAYOUT_EFFECTIVE: u32 = 1 << 7;
pub const STATE_LEDS: u32 = 1 << 8;

pub const MOD_NAME_SHIFT: &str = "Shift";
pub const MOD_NAME_CAPS: &str = "Lock";
pub const MOD_NAME_CTRL: &str = "Control";
pub const MOD_NAME_ALT: &str = "Mod1";
pub const MOD_NAME_NUM: &str = "Mod2";
pub const MOD_NAME_MOD3: &str = "Mod3";
pub const MOD_NAME_LOGO: &str = "Mod4";
pub const MOD_NAME_ISO_LEVEL3_SHIFT: &str = "Mod5";

pub const LED_NAME_CAPS: &str = "Caps Lock";
pub const LED_NAME_NUM: &str = "Num Lock";
pub const LED_NAME_SCROLL: &str = "Scroll Lock";

/// The few raw C names smithay refers to.
pub mod ffi {
    pub const XKB_STATE_MODS_DEPRESSED: u32 = super::STATE_MODS_DEPRESSED;
    pub const XKB_STATE_MODS_LATCHED: u32 = super::STATE_MODS_LATCHED;
    pub const XKB_STATE_MODS_LOCKED: u32 = super::STATE_MODS_LOCKED;
    pub const XKB_STATE_MODS_EFFECTIVE: u32 = super::STATE_MODS_EFFECTIVE;
    pub const XKB_STATE_LAYOUT_DEPRESSED: u32 = super::STATE_LAYOUT_DEPRESSED;
    pub const XKB_STATE_LAYOUT_LATCHED: u32 = super::STATE_LAYOUT_LATCHED;
    pub const XKB_STATE_LAYOUT_LOCKED: u32 = super::STATE_LAYOUT_LOCKED;
    pub const XKB_STATE_LAYOUT_EFFECTIVE: u32 = super::STATE_LAYOUT_EFFECTIVE;
    pub const XKB_STATE_LEDS: u32 = super::STATE_LEDS;
}

/// Keysym constants (raw values, named as in `X11/keysymdef.h` without the `XK_` prefix).
#[allow(non_upper_case_globals)]
pub mod keysyms {
    pub use xkeysym::key::*;
    pub const KEY_NoSymbol: u32 = 0;
}

const REAL_MOD_NAMES: [&str; 8] = [
    "Shift", "Lock", "Control", "Mod1", "Mod2", "Mod3", "Mod4", "Mod5",
];

/// The name of a keysym, as in `keysymdef.h`, or its hex value when it has none.
#[must_use]
pub fn keysym_get_name(keysym: Keysym) -> String {
    match kbvm::Keysym(keysym.raw()).name() {
        Some(n) => n.to_string(),
        None => format!("0x{:08x}", keysym.raw()),
    }
}

/// The Unicode character a keysym produces, if any.
#[must_use]
pub fn keysym_to_utf32(keysym: Keysym) -> u32 {
    kbvm::Keysym(keysym.raw()).char().map_or(0, u32::from)
}

/// The UTF-8 text a keysym produces (empty if none).
#[must_use]
pub fn keysym_to_utf8(keysym: Keysym) -> String {
    kbvm::Keysym(keysym.raw())
        .char()
        .map(String::from)
        .unwrap_or_default()
}

/// A keysym by its name (`"a"`, `"Return"`).
#[must_use]
pub fn keysym_from_name(name: &str, _flags: u32) -> Keysym {
    Keysym::new(kbvm::Keysym::from_str(name).map_or(0, |k| k.0))
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub enum KeyDirection {
    Up,
    Down,
}

/// A compilation context. It holds no state: keymaps never include files here.
#[derive(Clone, Debug)]
pub struct Context {
    _flags: ContextFlags,
}

impl Context {
    #[must_use]
    pub fn new(flags: ContextFlags) -> Context {
        Context { _flags: flags }
    }

    /// An opaque identity for debug output.
    #[must_use]
    pub fn get_raw_ptr(&self) -> *const () {
        std::ptr::from_ref(self).cast()
    }
}

#[derive(Debug)]
struct GroupInfo {
    /// Modifiers the key type looks at.
    type_mask: u32,
    /// (modifier combination, level) pairs of the key type.
    mappings: Vec<(u32, usize)>,
    /// Modifiers preserved per mapping (not consumed although in the type's mask).
    preserved: Vec<u32>,
    levels: Vec<Vec<Keysym>>,
}

#[derive(Debug)]
struct KeyInfo {
    groups: Vec<Option<GroupInfo>>,
    repeats: bool,
}

struct Led {
    name: String,
    matcher: LedRule,
}

/// An LED's rule: kbvm's, from a keymap compiled at run time, or the prebuilt table's.
enum LedRule {
    Compiled(IndicatorMatcher),
    Prebuilt(prebuilt::LedMatcher),
}

impl LedRule {
    fn matches(&self, components: &Components) -> bool {
        match self {
            LedRule::Compiled(m) => m.matches(components),
            LedRule::Prebuilt(m) => m.matches(components),
        }
    }
}

struct KeymapInner {
    text: String,
    machine: StateMachine,
    /// Indexed by XKB keycode (evdev + 8).
    keys: Vec<Option<KeyInfo>>,
    /// Real modifiers (0..8) then virtual ones, with the real modifiers they map to.
    mods: Vec<(String, u32)>,
    leds: Vec<Led>,
    layouts: Vec<String>,
}

/// A compiled keymap. Cloning shares it.
#[derive(Clone)]
pub struct Keymap {
    inner: Arc<KeymapInner>,
}

impl std::fmt::Debug for Keymap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keymap")
            .field("layouts", &self.inner.layouts)
            .finish_non_exhaustive()
    }
}

fn parse_group_names(text: &str) -> Vec<String> {
    // kbvm keeps group names private; read them back from the formatted text
    // (`name[Group1] = "English (US)";`).
    let mut names: Vec<(usize, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("name[") else {
            continue;
        };
        let Some((idx, rest)) = rest.split_once(']') else {
            continue;
        };
        let idx = idx.trim().to_ascii_lowercase();
        let Some(num) = idx
            .strip_prefix("group")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let Some(start) = rest.find('"') else {
            continue;
        };
        let rest = &rest[start + 1..];
        let Some(end) = rest.find('"') else { continue };
        names.push((num, rest[..end].to_string()));
    }
    names.sort_by_key(|(n, _)| *n);
    names.into_iter().map(|(_, s)| s).collect()
}

impl Keymap {
    fn compile(bytes: &[u8]) -> Option<Keymap> {
        let mut ctx = kbvm::xkb::Context::builder();
        ctx.enable_default_includes(false);
        ctx.enable_environment(false);
        let ctx = ctx.build();
        let mut diags: Vec<Diagnostic> = Vec::new();
        let km = ctx.keymap_from_bytes(&mut diags, None, bytes).ok()?;
        let text = km.format().to_string();
        let machine = km.to_builder().build_state_machine();

        let mut keys: Vec<(usize, KeyInfo)> = Vec::new();
        for key in km.keys() {
            let code = key.keycode().to_x11() as usize;
            if code > 0xffff {
                continue;
            }
            let mut groups = Vec::new();
            for g in key.groups() {
                let Some(g) = g else {
                    groups.push(None);
                    continue;
                };
                let ty = g.ty();
                let mut mappings = Vec::new();
                let mut preserved = Vec::new();
                for m in ty.mappings() {
                    mappings.push((m.mask().0, m.level()));
                    preserved.push(m.preserved().0);
                }
                let levels = g
                    .levels()
                    .map(|l| l.symbols().iter().map(|s| Keysym::new(s.0)).collect())
                    .collect();
                groups.push(Some(GroupInfo {
                    type_mask: ty.mask().0,
                    mappings,
                    preserved,
                    levels,
                }));
            }
            keys.push((
                code,
                KeyInfo {
                    groups,
                    repeats: key.repeats(),
                },
            ));
        }

        let virtual_mods = km
            .virtual_modifiers()
            .map(|vm| (vm.name().to_string(), vm.mask().0))
            .collect();
        let leds = km
            .indicators()
            .map(|i| Led {
                name: i.name().to_string(),
                matcher: LedRule::Compiled(i.matcher()),
            })
            .collect();
        Some(Keymap::assemble(text, machine, keys, virtual_mods, leds))
    }

    /// The embedded US keymap from the tables build.rs compiled: no XKB parsing here.
    fn prebuilt_us() -> Keymap {
        let mut keys: Vec<(usize, KeyInfo)> = Vec::new();
        for key in prebuilt::KEYS {
            let code = key.code as usize;
            let groups: Vec<Option<GroupInfo>> = key
                .groups
                .iter()
                .map(|g| {
                    let g = g.as_ref()?;
                    let ty = prebuilt::TYPES.get(g.ty)?;
                    Some(GroupInfo {
                        type_mask: ty.mask,
                        mappings: ty.mappings.iter().map(|m| (m.mods, m.level)).collect(),
                        preserved: ty.mappings.iter().map(|m| m.preserved).collect(),
                        levels: g
                            .levels
                            .iter()
                            .map(|l| l.syms.iter().map(|s| Keysym::new(*s)).collect())
                            .collect(),
                    })
                })
                .collect();
            keys.push((
                code,
                KeyInfo {
                    groups,
                    repeats: key.repeats,
                },
            ));
        }
        let virtual_mods = prebuilt::VIRTUAL_MODS
            .iter()
            .map(|(name, mask)| ((*name).to_string(), *mask))
            .collect();
        let leds = prebuilt::LEDS
            .iter()
            .map(|(name, matcher)| Led {
                name: (*name).to_string(),
                matcher: LedRule::Prebuilt(*matcher),
            })
            .collect();
        Keymap::assemble(
            prebuilt::TEXT.to_string(),
            prebuilt::state_machine(),
            keys,
            virtual_mods,
            leds,
        )
    }

    /// The parts both ways of making a keymap share: the key table indexed by keycode,
    /// modifier indices (real, then virtual), layout names read from the text.
    fn assemble(
        text: String,
        machine: StateMachine,
        defined_keys: Vec<(usize, KeyInfo)>,
        virtual_mods: Vec<(String, u32)>,
        leds: Vec<Led>,
    ) -> Keymap {
        let max_groups = defined_keys
            .iter()
            .map(|(_, k)| k.groups.len())
            .max()
            .unwrap_or(0);
        let mut keys: Vec<Option<KeyInfo>> = Vec::new();
        for (code, key) in defined_keys {
            if keys.len() <= code {
                keys.resize_with(code + 1, || None);
            }
            keys[code] = Some(key);
        }
        let mut mods: Vec<(String, u32)> = REAL_MOD_NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| ((*n).to_string(), 1u32 << i))
            .collect();
        mods.extend(virtual_mods);
        let mut layouts = parse_group_names(&text);
        while layouts.len() < max_groups.max(1) {
            layouts.push(String::new());
        }
        layouts.truncate(max_groups.max(1));
        Keymap {
            inner: Arc::new(KeymapInner {
                text,
                machine,
                keys,
                mods,
                leds,
                layouts,
            }),
        }
    }

    /// Returns the embedded US keymap, prebuilt: the guest has no XKB data to compile names
    /// from, and parsing even the embedded text costs most of a second under TCG.
    #[must_use]
    pub fn new_from_names<S: Borrow<str> + ?Sized>(
        _context: &Context,
        _rules: &S,
        _model: &S,
        _layout: &S,
        _variant: &S,
        _options: Option<String>,
        _flags: KeymapCompileFlags,
    ) -> Option<Keymap> {
        Some(Keymap::prebuilt_us())
    }

    #[must_use]
    pub fn new_from_string(
        _context: &Context,
        string: String,
        format: KeymapFormat,
        _flags: KeymapCompileFlags,
    ) -> Option<Keymap> {
        if format != KEYMAP_FORMAT_TEXT_V1 {
            return None;
        }
        Keymap::compile(string.as_bytes())
    }

    pub fn new_from_file(
        context: &Context,
        file: &mut fs::File,
        format: KeymapFormat,
        flags: KeymapCompileFlags,
    ) -> Option<Keymap> {
        let mut s = String::new();
        file.read_to_string(&mut s).ok()?;
        Keymap::new_from_string(context, s, format, flags)
    }

    /// Reads `size` bytes (including a trailing NUL) from `fd` and compiles them.
    ///
    /// # Safety
    /// Kept `unsafe` for API compatibility; reading the fd has no extra requirements.
    pub unsafe fn new_from_fd(
        _context: &Context,
        fd: OwnedFd,
        size: usize,
        format: KeymapFormat,
        _flags: KeymapCompileFlags,
    ) -> std::io::Result<Option<Keymap>> {
        if format != KEYMAP_FORMAT_TEXT_V1 {
            return Ok(None);
        }
        let file = fs::File::from(fd);
        let mut buf = vec![0u8; size];
        file.read_exact_at(&mut buf, 0)?;
        while buf.last() == Some(&0) {
            buf.pop();
        }
        Ok(Keymap::compile(&buf))
    }

    /// The keymap as XKB text (what `wl_keyboard.keymap` sends).
    #[must_use]
    pub fn get_as_string(&self, _format: KeymapFormat) -> String {
        self.inner.text.clone()
    }

    #[must_use]
    pub fn get_raw_ptr(&self) -> *const () {
        Arc::as_ptr(&self.inner).cast()
    }

    #[must_use]
    pub fn min_keycode(&self) -> Keycode {
        Keycode::new(8)
    }

    #[must_use]
    pub fn max_keycode(&self) -> Keycode {
        Keycode::new(self.inner.keys.len().saturating_sub(1).max(8) as u32)
    }

    #[must_use]
    pub fn num_mods(&self) -> ModIndex {
        self.inner.mods.len() as u32
    }

    #[must_use]
    pub fn mod_get_name(&self, idx: ModIndex) -> &str {
        self.inner
            .mods
            .get(idx as usize)
            .map_or("", |(n, _)| n.as_str())
    }

    #[must_use]
    pub fn mod_get_index<S: Borrow<str> + ?Sized>(&self, name: &S) -> ModIndex {
        let name = name.borrow();
        self.inner
            .mods
            .iter()
            .position(|(n, _)| n == name)
            .map_or(MOD_INVALID, |i| i as u32)
    }

    fn mod_mask(&self, idx: ModIndex) -> u32 {
        self.inner.mods.get(idx as usize).map_or(0, |(_, m)| *m)
    }

    #[must_use]
    pub fn num_layouts(&self) -> LayoutIndex {
        self.inner.layouts.len() as u32
    }

    #[must_use]
    pub fn layout_get_name(&self, idx: LayoutIndex) -> &str {
        self.inner
            .layouts
            .get(idx as usize)
            .map_or("", String::as_str)
    }

    #[must_use]
    pub fn layout_get_index<S: Borrow<str> + ?Sized>(&self, name: &S) -> LayoutIndex {
        let name = name.borrow();
        self.inner
            .layouts
            .iter()
            .position(|n| n == name)
            .map_or(LAYOUT_INVALID, |i| i as u32)
    }

    /// Iterates over the layout names.
    pub fn layouts(&self) -> impl Iterator<Item = &str> {
        self.inner.layouts.iter().map(String::as_str)
    }

    #[must_use]
    pub fn num_leds(&self) -> LedIndex {
        self.inner.leds.len() as u32
    }

    #[must_use]
    pub fn led_get_name(&self, idx: LedIndex) -> &str {
        self.inner
            .leds
            .get(idx as usize)
            .map_or("", |l| l.name.as_str())
    }

    #[must_use]
    pub fn led_get_index<S: Borrow<str> + ?Sized>(&self, name: &S) -> LedIndex {
        let name = name.borrow();
        self.inner
            .leds
            .iter()
            .position(|l| l.name == name)
            .map_or(LED_INVALID, |i| i as u32)
    }

    fn key(&self, key: Keycode) -> Option<&KeyInfo> {
        self.inner.keys.get(key.raw() as usize)?.as_ref()
    }

    #[must_use]
    pub fn num_layouts_for_key(&self, key: Keycode) -> LayoutIndex {
        self.key(key).map_or(0, |k| k.groups.len() as u32)
    }

    #[must_use]
    pub fn num_levels_for_key(&self, key: Keycode, layout: LayoutIndex) -> LevelIndex {
        self.group(key, layout).map_or(0, |g| g.levels.len() as u32)
    }

    #[must_use]
    pub fn key_repeats(&self, key: Keycode) -> bool {
        self.key(key).is_some_and(|k| k.repeats)
    }

    fn group(&self, key: Keycode, layout: LayoutIndex) -> Option<&GroupInfo> {
        self.key(key)?.groups.get(layout as usize)?.as_ref()
    }

    /// The keysyms of a key at a layout and level, without any state applied.
    #[must_use]
    pub fn key_get_syms_by_level(
        &self,
        key: Keycode,
        layout: LayoutIndex,
        level: LevelIndex,
    ) -> &[Keysym] {
        self.group(key, layout)
            .and_then(|g| g.levels.get(level as usize))
            .map_or(&[], Vec::as_slice)
    }

    /// Calls `f` for every keycode that the keymap defines.
    pub fn key_for_each<F: FnMut(&Keymap, Keycode)>(&self, mut f: F) {
        for (code, k) in self.inner.keys.iter().enumerate() {
            if k.is_some() {
                f(self, Keycode::new(code as u32));
            }
        }
    }
}

/// Keyboard state: pressed keys, modifiers, layout, LEDs.
#[derive(Clone)]
pub struct State {
    keymap: Keymap,
    machine_state: kbvm::state_machine::State,
    components: Components,
    events: Vec<Event>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("components", &self.components)
            .finish_non_exhaustive()
    }
}

impl State {
    #[must_use]
    pub fn new(keymap: &Keymap) -> State {
        State {
            keymap: keymap.clone(),
            machine_state: keymap.inner.machine.create_state(),
            components: Components::default(),
            events: Vec::new(),
        }
    }

    #[must_use]
    pub fn get_raw_ptr(&self) -> *const () {
        std::ptr::from_ref(self).cast()
    }

    #[must_use]
    pub fn get_keymap(&self) -> Keymap {
        self.keymap.clone()
    }

    fn leds_mask(&self) -> u32 {
        let mut mask = 0;
        for (i, led) in self.keymap.inner.leds.iter().enumerate().take(32) {
            if led.matcher.matches(&self.components) {
                mask |= 1 << i;
            }
        }
        mask
    }

    fn changed_since(&self, old: &Components, old_leds: u32) -> StateComponent {
        let new = &self.components;
        let mut c = 0;
        if old.mods_pressed != new.mods_pressed {
            c |= STATE_MODS_DEPRESSED;
        }
        if old.mods_latched != new.mods_latched {
            c |= STATE_MODS_LATCHED;
        }
        if old.mods_locked != new.mods_locked {
            c |= STATE_MODS_LOCKED;
        }
        if old.mods != new.mods {
            c |= STATE_MODS_EFFECTIVE;
        }
        if old.group_pressed != new.group_pressed {
            c |= STATE_LAYOUT_DEPRESSED;
        }
        if old.group_latched != new.group_latched {
            c |= STATE_LAYOUT_LATCHED;
        }
        if old.group_locked != new.group_locked {
            c |= STATE_LAYOUT_LOCKED;
        }
        if old.group != new.group {
            c |= STATE_LAYOUT_EFFECTIVE;
        }
        if old_leds != self.leds_mask() {
            c |= STATE_LEDS;
        }
        c
    }

    /// Feeds a key press or release; returns which state components changed.
    pub fn update_key(&mut self, key: Keycode, direction: KeyDirection) -> StateComponent {
        let old = self.components;
        let old_leds = self.leds_mask();
        let dir = match direction {
            KeyDirection::Up => Direction::Up,
            KeyDirection::Down => Direction::Down,
        };
        self.events.clear();
        self.keymap.inner.machine.handle_key(
            &mut self.machine_state,
            &mut self.events,
            kbvm::Keycode::from_x11(key.raw()),
            dir,
        );
        for ev in self.events.drain(..) {
            self.components.apply_event(ev);
        }
        self.changed_since(&old, old_leds)
    }

    /// Sets modifiers and layout directly (as a client does from `wl_keyboard.modifiers`).
    pub fn update_mask(
        &mut self,
        depressed_mods: ModMask,
        latched_mods: ModMask,
        locked_mods: ModMask,
        depressed_layout: LayoutIndex,
        latched_layout: LayoutIndex,
        locked_layout: LayoutIndex,
    ) -> StateComponent {
        let old = self.components;
        let old_leds = self.leds_mask();
        let c = &mut self.components;
        c.mods_pressed = ModifierMask(depressed_mods);
        c.mods_latched = ModifierMask(latched_mods);
        c.mods_locked = ModifierMask(locked_mods);
        c.group_pressed = GroupDelta(depressed_layout);
        c.group_latched = GroupDelta(latched_layout);
        c.group_locked = GroupIndex(locked_layout);
        c.update_effective();
        let n = self.keymap.num_layouts().max(1);
        c.group = GroupIndex(c.group.0 % n);
        self.changed_since(&old, old_leds)
    }

    #[must_use]
    pub fn serialize_mods(&self, components: StateComponent) -> ModMask {
        let c = &self.components;
        if components & STATE_MODS_EFFECTIVE != 0 {
            return c.mods.0;
        }
        let mut m = 0;
        if components & STATE_MODS_DEPRESSED != 0 {
            m |= c.mods_pressed.0;
        }
        if components & STATE_MODS_LATCHED != 0 {
            m |= c.mods_latched.0;
        }
        if components & STATE_MODS_LOCKED != 0 {
            m |= c.mods_locked.0;
        }
        m
    }

    #[must_use]
    pub fn serialize_layout(&self, components: StateComponent) -> LayoutIndex {
        let c = &self.components;
        if components & STATE_LAYOUT_EFFECTIVE != 0 {
            return c.group.0;
        }
        let mut l = 0u32;
        if components & STATE_LAYOUT_DEPRESSED != 0 {
            l = l.wrapping_add(c.group_pressed.0);
        }
        if components & STATE_LAYOUT_LATCHED != 0 {
            l = l.wrapping_add(c.group_latched.0);
        }
        if components & STATE_LAYOUT_LOCKED != 0 {
            l = l.wrapping_add(c.group_locked.0);
        }
        l
    }

    #[must_use]
    pub fn mod_index_is_active(&self, idx: ModIndex, type_: StateComponent) -> bool {
        let mask = self.keymap.mod_mask(idx);
        mask != 0 && self.serialize_mods(type_) & mask == mask
    }

    #[must_use]
    pub fn mod_name_is_active<S: Borrow<str> + ?Sized>(
        &self,
        name: &S,
        type_: StateComponent,
    ) -> bool {
        let idx = self.keymap.mod_get_index(name);
        idx != MOD_INVALID && self.mod_index_is_active(idx, type_)
    }

    #[must_use]
    pub fn layout_index_is_active(&self, idx: LayoutIndex, type_: StateComponent) -> bool {
        let c = &self.components;
        (type_ & STATE_LAYOUT_EFFECTIVE != 0 && c.group.0 == idx)
            || (type_ & STATE_LAYOUT_DEPRESSED != 0 && c.group_pressed.0 == idx)
            || (type_ & STATE_LAYOUT_LATCHED != 0 && c.group_latched.0 == idx)
            || (type_ & STATE_LAYOUT_LOCKED != 0 && c.group_locked.0 == idx)
    }

    #[must_use]
    pub fn layout_name_is_active<S: Borrow<str> + ?Sized>(
        &self,
        name: &S,
        type_: StateComponent,
    ) -> bool {
        let idx = self.keymap.layout_get_index(name);
        idx != LAYOUT_INVALID && self.layout_index_is_active(idx, type_)
    }

    #[must_use]
    pub fn led_index_is_active(&self, idx: LedIndex) -> bool {
        self.keymap
            .inner
            .leds
            .get(idx as usize)
            .is_some_and(|l| l.matcher.matches(&self.components))
    }

    #[must_use]
    pub fn led_name_is_active<S: Borrow<str> + ?Sized>(&self, name: &S) -> bool {
        let idx = self.keymap.led_get_index(name);
        idx != LED_INVALID && self.led_index_is_active(idx)
    }

    /// The effective layout for a key (wrapped into the key's layouts).
    #[must_use]
    pub fn key_get_layout(&self, key: Keycode) -> LayoutIndex {
        let n = self.keymap.num_layouts_for_key(key);
        if n == 0 {
            return LAYOUT_INVALID;
        }
        self.components.group.0 % n
    }

    fn level_and_consumed(&self, key: Keycode, layout: LayoutIndex) -> Option<(usize, u32)> {
        let g = self.keymap.group(key, layout)?;
        let mods = self.components.mods.0 & g.type_mask;
        // As libxkbcommon (XKB mode): all of the type's modifiers are consumed,
        // except those the matching entry preserves.
        for (i, (mask, level)) in g.mappings.iter().enumerate() {
            if *mask == mods {
                let preserved = g.preserved.get(i).copied().unwrap_or(0);
                return Some((*level, g.type_mask & !preserved));
            }
        }
        Some((0, g.type_mask))
    }

    #[must_use]
    pub fn key_get_level(&self, key: Keycode, layout: LayoutIndex) -> LevelIndex {
        self.level_and_consumed(key, layout)
            .map_or(LEVEL_INVALID, |(l, _)| l as u32)
    }

    /// The keysyms a key produces in the current state.
    #[must_use]
    pub fn key_get_syms(&self, key: Keycode) -> &[Keysym] {
        let layout = self.key_get_layout(key);
        if layout == LAYOUT_INVALID {
            return &[];
        }
        let level = self.key_get_level(key, layout);
        self.keymap.key_get_syms_by_level(key, layout, level)
    }

    /// The single keysym of a key in the current state, or `NoSymbol`.
    #[must_use]
    pub fn key_get_one_sym(&self, key: Keycode) -> Keysym {
        match self.key_get_syms(key) {
            [one] => self.caps_transform(key, *one),
            _ => Keysym::new(0),
        }
    }

    fn unconsumed_mods(&self, key: Keycode) -> u32 {
        let layout = self.key_get_layout(key);
        let consumed = self.level_and_consumed(key, layout).map_or(0, |(_, c)| c);
        self.components.mods.0 & !consumed
    }

    fn caps_transform(&self, key: Keycode, sym: Keysym) -> Keysym {
        // Like libxkbcommon: an unconsumed Lock capitalizes the keysym.
        if self.unconsumed_mods(key) & ModifierMask::LOCK.0 != 0 {
            Keysym::new(kbvm::Keysym(sym.raw()).to_uppercase().0)
        } else {
            sym
        }
    }

    /// The Unicode code point a key produces (0 if none), with Control applied.
    #[must_use]
    pub fn key_get_utf32(&self, key: Keycode) -> u32 {
        let sym = self.key_get_one_sym(key);
        let Some(mut ch) = kbvm::Keysym(sym.raw()).char() else {
            return 0;
        };
        if self.unconsumed_mods(key) & ModifierMask::CONTROL.0 != 0 {
            ch = control_char(ch);
        }
        u32::from(ch)
    }

    /// The UTF-8 text a key produces (empty if none), with Control applied.
    #[must_use]
    pub fn key_get_utf8(&self, key: Keycode) -> String {
        char::from_u32(self.key_get_utf32(key))
            .filter(|c| *c != '\0')
            .map(String::from)
            .unwrap_or_default()
    }
}

/// The control character for `ch` (Ctrl+C → U+0003), or `ch` itself.
fn control_char(ch: char) -> char {
    let c = u32::from(ch);
    if (0x40..0x7f).contains(&c) || c == 0x20 {
        let v = if c == 0x20 { 0 } else { c & 0x1f };
        if c == 0x7f {
            return ch;
        }
        return char::from_u32(v).unwrap_or(ch);
    }
    if c == 0x32 {
        return '\0';
    }
    if (0x33..=0x37).contains(&c) {
        return char::from_u32(c - 0x33 + 0x1b).unwrap_or(ch);
    }
    if c == 0x38 {
        return '\u{7f}';
    }
    if c == 0x2f {
        return '\u{1f}';
    }
    ch
}

#[cfg(test)]
mod tests;
