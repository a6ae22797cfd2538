//! A chat server with its browser page, both on one wss:// port: nicknames, rooms, who
//! is in each room, and a page that reconnects by itself with its name and room.
//!
//! The page (`examples/chat-www/index.html`) is served at `https://localhost:8443/`
//! and opens `wss://localhost:8443/ws`. The text protocol, one line per message:
//!
//! - client to server: `/nick NAME`, `/join ROOM`, `/help`, or any other text to say
//!   it (`//text` says `/text`). A client may ask for a name and a room as it connects,
//!   `/ws?nick=NAME&room=ROOM`: the page does when it reconnects.
//! - server to client: `* notice` lines and `<nick> text` lines, and three lines that
//!   keep the page's panels current: `/you NICK ROOM`, `/members ROOM NICK...` (who is
//!   in the room) and `/rooms ROOM:COUNT...` (the rooms with people in them, and the lobby).
//!
//! Names and rooms are one word of at most 24 letters, digits, `-`, `_` or `.`; no two
//! people share a name, whatever the case. Newcomers are `guest-1`, `guest-2`, ... in
//! the order they come (a number is not given twice while the server runs, so a guest
//! name in the scrollback always means the same person). Commands are answered to
//! their sender only.
//!
//! Usage: cargo run --example chat -- [--bind ADDR]... [--cert PEM --key PEM]
//!        [--max-connections N] [--redis URL]
//!
//! With `--redis URL` (and `--features redis`), several chat servers share their rooms
//! through Redis: what is said in a room reaches its people on every server. Each server
//! lists its own people in the member and room panels, and keeps names unique among them.
//!
//! With no `--cert`/`--key`, it uses the development certificate in `certs/`: trust
//! `certs/ca.pem` in the browser (see `certs/README.md`) and open the printed URL.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/cluster.rs"]
mod cluster;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use tinywss::{ConnectionId, Event, Handle, Message};

const LOBBY: &str = "lobby";
const MAX_NAME: usize = 24;
const NAME_RULE: &str = "one word of at most 24 letters, digits, - _ or .";
const HELP: &str = "* /nick NAME renames you, /join ROOM moves you to a room (made as people join it), \
                    //text says a line that starts with /. Names and rooms are one word of at most 24 \
                    letters, digits, - _ or .";

/// What the chat knows about one connected person.
struct Member {
    nick: String,
    room: String,
}

/// The chat's whole state: it lives in the main thread, and only there.
struct Chat {
    handle: Handle,
    members: HashMap<ConnectionId, Member>,
    /// The number of the next guest name to try.
    next_guest: u64,
}

impl Chat {
    /// A newcomer: the name and room it asked for if it may have them (a page that
    /// reconnects asks for its own), else the lowest free guest name and the lobby.
    fn joined(&mut self, conn: ConnectionId, path: &str) {
        let asked_room = query_param(path, "room").and_then(|room| room_name(&room).ok());
        let room = asked_room.unwrap_or_else(|| LOBBY.into());
        let (nick, greeting) = match query_param(path, "nick") {
            Some(nick) => match self.nick_problem(conn, &nick) {
                None => (nick.clone(), format!("* welcome back, {nick}")),
                Some(problem) => self.guest(&format!(" ({problem})")),
            },
            None => self.guest(": type to talk; /help for commands"),
        };
        self.members.insert(conn, Member { nick, room });
        self.tell(conn, &greeting);
        self.enter(conn);
    }

    /// A guest name for a newcomer, and its welcome. A page that reconnects after a
    /// restart may hold a guest name already: that number is skipped.
    fn guest(&mut self, note: &str) -> (String, String) {
        let nick = loop {
            let nick = format!("guest-{}", self.next_guest);
            self.next_guest += 1;
            if !self.members.values().any(|m| m.nick.eq_ignore_ascii_case(&nick)) {
                break nick;
            }
        };
        let greeting = format!("* welcome, {nick}{note}");
        (nick, greeting)
    }

    fn said(&mut self, conn: ConnectionId, text: &str) {
        let text = text.trim();
        match text.strip_prefix('/') {
            _ if text.is_empty() => {}
            Some(escaped) if escaped.starts_with('/') => self.say(conn, escaped),
            Some(command) => self.command(conn, command),
            None => self.say(conn, text),
        }
    }

    fn command(&mut self, conn: ConnectionId, line: &str) {
        let (name, argument) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match name {
            "nick" => self.rename(conn, argument.trim()),
            "join" => self.move_to(conn, argument.trim()),
            "help" => self.tell(conn, HELP),
            _ => self.tell(conn, &format!("* unknown command /{}; /help lists them", clean(name, MAX_NAME))),
        }
    }

    fn say(&self, conn: ConnectionId, text: &str) {
        if let Some(member) = self.members.get(&conn) {
            let _ = self.handle.publish(&member.room, format!("<{}> {}", member.nick, clean(text, 500)));
        }
    }

    fn rename(&mut self, conn: ConnectionId, nick: &str) {
        if nick.is_empty() {
            return self.tell(conn, &format!("* usage: /nick NAME, {NAME_RULE}"));
        }
        if let Some(problem) = self.nick_problem(conn, nick) {
            return self.tell(conn, &format!("* {problem}"));
        }
        let Some(member) = self.members.get_mut(&conn) else { return };
        let old = std::mem::replace(&mut member.nick, nick.to_owned());
        let room = member.room.clone();
        let _ = self.handle.publish(&room, format!("* {old} is now {nick}"));
        self.tell_you(conn);
        self.show_members(&room);
    }

    fn move_to(&mut self, conn: ConnectionId, room: &str) {
        if room.is_empty() {
            return self.tell(conn, &format!("* usage: /join ROOM, {NAME_RULE}"));
        }
        let room = match room_name(room) {
            Ok(room) => room,
            Err(problem) => return self.tell(conn, &format!("* {problem}")),
        };
        let Some(member) = self.members.get_mut(&conn) else { return };
        if member.room == room {
            return self.tell(conn, &format!("* you are in #{room} already"));
        }
        let old = std::mem::replace(&mut member.room, room);
        let nick = member.nick.clone();
        let _ = self.handle.leave(conn, &old);
        let _ = self.handle.publish(&old, format!("* {nick} left #{old}"));
        self.show_members(&old);
        self.enter(conn);
    }

    fn left(&mut self, conn: ConnectionId) {
        if let Some(member) = self.members.remove(&conn) {
            let _ = self.handle.publish(&member.room, format!("* {} left #{}", member.nick, member.room));
            self.show_members(&member.room);
            self.show_rooms();
        }
    }

    /// Puts `conn` in its room, and tells everyone concerned.
    fn enter(&self, conn: ConnectionId) {
        let Some(member) = self.members.get(&conn) else { return };
        let _ = self.handle.join(conn, &member.room);
        let _ = self.handle.publish_except(&member.room, format!("* {} joined #{}", member.nick, member.room), conn);
        self.tell_you(conn);
        let others: Vec<&str> = self.in_room(&member.room).into_iter().filter(|n| *n != member.nick).collect();
        let company = if others.is_empty() { "nobody else yet".into() } else { others.join(", ") };
        self.tell(conn, &format!("* you are in #{} with {company}", member.room));
        self.show_members(&member.room);
        self.show_rooms();
    }

    /// Why `conn` may not be called `nick`, if it may not.
    fn nick_problem(&self, conn: ConnectionId, nick: &str) -> Option<String> {
        if let Err(problem) = check_name(nick) {
            return Some(problem);
        }
        let holder = self.members.iter().find(|(_, m)| m.nick.to_lowercase() == nick.to_lowercase());
        match holder {
            Some((id, _)) if *id == conn => Some(format!("you are {nick} already")),
            Some((_, m)) => Some(format!("{} is taken; choose another name", m.nick)),
            None => None,
        }
    }

    /// The names in `room`, sorted.
    fn in_room(&self, room: &str) -> Vec<&str> {
        let mut nicks: Vec<&str> = self.members.values().filter(|m| m.room == room).map(|m| m.nick.as_str()).collect();
        nicks.sort_by_key(|nick| nick.to_lowercase());
        nicks
    }

    fn tell_you(&self, conn: ConnectionId) {
        if let Some(member) = self.members.get(&conn) {
            self.tell(conn, &format!("/you {} {}", member.nick, member.room));
        }
    }

    fn show_members(&self, room: &str) {
        let line = format!("/members {room} {}", self.in_room(room).join(" "));
        self.tell_here(|member| member.room == room, line.trim_end());
    }

    fn show_rooms(&self) {
        let mut rooms = BTreeMap::from([(LOBBY, 0)]);
        for member in self.members.values() {
            *rooms.entry(member.room.as_str()).or_default() += 1;
        }
        let list: Vec<String> = rooms.iter().map(|(room, count)| format!("{room}:{count}")).collect();
        self.tell_here(|_| true, &format!("/rooms {}", list.join(" ")));
    }

    /// Sends `line` to the people of this server that `to` picks. Not through a room:
    /// with `--redis` a room spans servers, and each server knows only its own people.
    fn tell_here(&self, to: impl Fn(&Member) -> bool, line: &str) {
        for (conn, _) in self.members.iter().filter(|(_, member)| to(member)) {
            self.tell(*conn, line);
        }
    }

    fn tell(&self, conn: ConnectionId, line: &str) {
        let _ = self.handle.send(conn, line);
    }
}

/// Whether `name` is one word of at most [`MAX_NAME`] letters, digits, `-`, `_` or `.`.
fn check_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_alphanumeric() || "-_.".contains(c);
    if name.chars().count() <= MAX_NAME && name.chars().all(allowed) && !name.is_empty() {
        Ok(())
    } else {
        Err(format!("{:?} cannot be a name: {NAME_RULE}", clean(name, MAX_NAME + 1)))
    }
}

/// A room's name: `#games`, `Games` and `games` are the same room.
fn room_name(room: &str) -> Result<String, String> {
    let room = room.strip_prefix('#').unwrap_or(room).to_lowercase();
    match check_name(&room) {
        Ok(()) => Ok(room),
        Err(_) => Err(format!("#{} cannot be a room: {NAME_RULE}", clean(&room, MAX_NAME + 1))),
    }
}

/// At most `max` characters, without control characters.
fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// The value of `name` in the query of `path` (`/ws?nick=alice&room=games`), decoded.
fn query_param(path: &str, name: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    let (_, value) = query.split('&').filter_map(|pair| pair.split_once('=')).find(|(key, _)| *key == name)?;
    Some(percent_decode(value))
}

/// `%XX` escapes to bytes (as `encodeURIComponent` writes them), then UTF-8.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped =
            bytes.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match (bytes[i], escaped) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn main() {
    cli::init_logging();
    let args = cli::Cli::parse("chat", "[--redis URL]", &["redis"]);
    let redis = cluster::url(&args);
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/chat-www");
    let server = args.serve(|builder| {
        let builder = builder.static_dir(www).websocket_path("/ws").allow_same_origin(true).max_message_size(4096);
        cluster::join(builder, redis.as_deref())
    });
    log::info!("chat ready: open {} in a browser", cli::reach(&server, "https", "/"));

    let mut chat = Chat { handle: server.handle(), members: HashMap::new(), next_guest: 1 };
    for event in server.events() {
        match event {
            Event::Open { conn, info } => chat.joined(conn, &info.path),
            Event::Message { conn, message: Message::Text(text), .. } => chat.said(conn, &text),
            Event::Message { conn, .. } => chat.tell(conn, "* this chat speaks text only"),
            Event::Close { conn, .. } => chat.left(conn),
            _ => {}
        }
    }
}
