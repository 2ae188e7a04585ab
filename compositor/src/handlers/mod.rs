//! Protocol handlers, one file per protocol (smallvil shape).

mod compositor;
mod seat;
mod xdg_shell;
