//! nekos-viewer: a full-screen cat slideshow, a Wayland (wl_shm + xdg-shell) client.
//! The slideshow is the library (`slideshow.rs`); this wrapper reads the command line
//! and environment and connects through WAYLAND_SOCKET / WAYLAND_DISPLAY.

use nekos_viewer::config::{Config, USAGE, list_photos};
use nekos_viewer::slideshow;
use wayland_client::Connection;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return;
    }
    let cfg = match Config::parse(&args, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("viewer: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let photos = match list_photos(&cfg.dir) {
        Ok(p) => p,
        Err(e) => {
            println!("viewer: cannot read {}: {e}", cfg.dir.display());
            Vec::new()
        }
    };
    let result = Connection::connect_to_env()
        .map_err(|e| format!("wayland connect: {e}"))
        .and_then(|conn| slideshow::run(conn, cfg, photos, Box::new(|l| println!("{l}"))));
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("viewer: {e}");
            1
        }
    };
    std::process::exit(code);
}
