//! tinywss inside an existing synchronous loop: a fixed-rate simulation (a ball
//! bouncing in a box, 30 steps a second) that streams its state to every client and
//! takes commands from them, without an async runtime and without ever blocking the
//! loop. `crossbeam_channel::select!` waits on the server's events and the loop's own
//! tick at once: the pattern for a game loop, a GUI or a simulation.
//!
//! Client to server: `kick` (speeds the ball up) or `pause`/`resume`. Server to
//! client: `step X Y` lines, 30 a second.
//!
//! Usage: cargo run --example embedded -- [--bind ADDR]... [--cert PEM --key PEM]
//!        [--max-connections N] [--steps N]   (stop after N steps; default: run forever)

#[path = "common/cli.rs"]
mod cli;

use std::time::Duration;

use tinywss::crossbeam_channel::{select, tick};
use tinywss::{Event, Message};

/// The simulation: knows nothing about networking.
struct World {
    x: f64,
    y: f64,
    dx: f64,
    dy: f64,
    paused: bool,
}

impl World {
    fn step(&mut self) {
        if self.paused {
            return;
        }
        self.x += self.dx;
        self.y += self.dy;
        if !(0.0..=100.0).contains(&self.x) {
            self.dx = -self.dx;
            self.x = self.x.clamp(0.0, 100.0);
        }
        if !(0.0..=100.0).contains(&self.y) {
            self.dy = -self.dy;
            self.y = self.y.clamp(0.0, 100.0);
        }
    }

    fn command(&mut self, command: &str) {
        match command.trim() {
            "kick" => (self.dx, self.dy) = (self.dx * 1.5, self.dy * 1.5),
            "pause" => self.paused = true,
            "resume" => self.paused = false,
            _ => {}
        }
    }
}

fn main() {
    cli::init_logging();
    let args = cli::Cli::parse("embedded", "[--steps N]", &["steps"]);
    let steps: u64 = args.get("steps", u64::MAX);
    let server = args.serve(|builder| builder);
    log::info!("simulation streaming at {}", cli::reach(&server, "wss", "/"));

    let handle = server.handle();
    let events = server.events();
    let ticks = tick(Duration::from_secs(1) / 30);
    let mut world = World { x: 10.0, y: 20.0, dx: 1.3, dy: 0.7, paused: false };
    let mut step = 0u64;
    while step < steps {
        select! {
            // The loop's own clock: advance the world and show it to everyone.
            recv(ticks) -> _ => {
                world.step();
                step += 1;
                let _ = handle.broadcast(format!("step {:.1} {:.1}", world.x, world.y));
            }
            // Network events, handled between steps, never blocking them.
            recv(events) -> event => match event {
                Ok(Event::Open { conn, info }) => log::info!("{conn} watching from {}", info.peer),
                Ok(Event::Message { message: Message::Text(command), .. }) => world.command(&command),
                Ok(Event::Close { conn, reason, .. }) => log::info!("{conn} left: {reason}"),
                Ok(_) => {}
                Err(_) => break, // the server has shut down
            },
        }
    }
    log::info!("simulation ran {step} steps; stopping");
    // Dropping the server closes every client with 1001 and joins its threads.
}
