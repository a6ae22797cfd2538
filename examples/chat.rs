//! A chat server with its browser page, both on one wss:// port: nicknames, rooms,
//! join and leave notices. The page reconnects by itself when the server restarts.
//!
//! The page (`examples/chat-www/index.html`) is served at `https://localhost:8443/`
//! and opens `wss://localhost:8443/ws`. The text protocol, one line per message:
//!
//! - client to server: `/nick NAME`, `/join ROOM`, or any other text to say it;
//! - server to client: `* notice` lines and `<nick> text` lines.
//!
//! Usage: cargo run --example chat -- [--bind ADDR] [--cert PEM --key PEM]
//!
//! With no `--cert`/`--key`, it uses the development certificates in `certs/`: trust
//! `certs/ca.pem` in the browser (see `certs/README.md`) and open the printed URL.

#[path = "common/cli.rs"]
mod cli;

use std::collections::HashMap;
use std::path::Path;

use tinywss::{ConnectionId, Event, Handle, Message};

const LOBBY: &str = "lobby";

/// What the chat knows about one connected user.
struct Member {
    nick: String,
    room: String,
}

/// The chat's whole state: it lives in the main thread, and only there.
struct Chat {
    handle: Handle,
    members: HashMap<ConnectionId, Member>,
}

impl Chat {
    fn joined(&mut self, conn: ConnectionId) {
        let member = Member { nick: format!("guest-{}", conn.as_u64()), room: LOBBY.into() };
        self.tell(conn, &format!("* welcome, {}! /nick NAME to rename, /join ROOM to move", member.nick));
        self.enter(conn, &member);
        self.members.insert(conn, member);
    }

    fn said(&mut self, conn: ConnectionId, text: &str) {
        let Some(member) = self.members.get_mut(&conn) else { return };
        let text = text.trim();
        if let Some(nick) = text.strip_prefix("/nick ") {
            let nick = clean(nick, 24);
            let notice = format!("* {} is now {nick}", member.nick);
            member.nick = nick;
            let _ = self.handle.publish(&member.room, notice);
        } else if let Some(room) = text.strip_prefix("/join ") {
            let room = clean(room, 24);
            let old = std::mem::replace(&mut member.room, room);
            let _ = self.handle.leave(conn, &old);
            let _ = self.handle.publish(&old, format!("* {} left #{old}", member.nick));
            let member = &self.members[&conn];
            self.enter(conn, member);
        } else if !text.is_empty() {
            let line = format!("<{}> {}", member.nick, clean(text, 500));
            let _ = self.handle.publish(&member.room, line);
        }
    }

    fn left(&mut self, conn: ConnectionId) {
        if let Some(member) = self.members.remove(&conn) {
            let _ = self.handle.publish(&member.room, format!("* {} left #{}", member.nick, member.room));
        }
    }

    fn enter(&self, conn: ConnectionId, member: &Member) {
        let _ = self.handle.join(conn, &member.room);
        let _ = self.handle.publish_except(&member.room, format!("* {} joined #{}", member.nick, member.room), conn);
        self.tell(conn, &format!("* you are in #{} as {}", member.room, member.nick));
    }

    fn tell(&self, conn: ConnectionId, line: &str) {
        let _ = self.handle.send(conn, line);
    }
}

/// One line of at most `max` characters, without control characters.
fn clean(text: &str, max: usize) -> String {
    let cleaned: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    if cleaned.trim().is_empty() {
        "nobody".into()
    } else {
        cleaned.trim().to_owned()
    }
}

fn main() {
    cli::init_logging();
    let args = cli::Cli::parse("chat", "", &[]);
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/chat-www");
    let server = args
        .serve(|builder| builder.static_dir(www).websocket_path("/ws").allow_same_origin(true).max_message_size(4096));
    log::info!("chat ready: open {} in a browser", cli::reach(&server, "https", "/"));

    let mut chat = Chat { handle: server.handle(), members: HashMap::new() };
    for event in server.events() {
        match event {
            Event::Open { conn, .. } => chat.joined(conn),
            Event::Message { conn, message: Message::Text(text), .. } => chat.said(conn, &text),
            Event::Message { conn, .. } => chat.tell(conn, "* this chat speaks text only"),
            Event::Close { conn, .. } => chat.left(conn),
            _ => {}
        }
    }
}
