//! Typed RPC interfaces. [`interface!`](crate::interface) declares, in one
//! place, a topic's version and every method with its kind (call, cast or
//! fanout), its argument type and its answer. It makes a client with one
//! method per RPC (so a caller cannot send a method that does not exist), a
//! handler trait a server implements (so a server cannot forget one), and the
//! dispatch between them, which refuses an unknown method or a version the
//! server does not speak with an error the caller sees.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::{BusError, Message, RemoteError, Reply};

/// An interface version: a new minor adds methods or optional arguments,
/// a new major breaks the old ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
}

impl Version {
    pub const fn new(major: u16, minor: u16) -> Version {
        Version { major, minor }
    }

    pub fn parse(s: &str) -> Option<Version> {
        let (a, b) = s.split_once('.')?;
        Some(Version { major: a.parse().ok()?, minor: b.parse().ok()? })
    }

    /// Whether a server at this version can handle a message sent at `sent`.
    pub fn can_serve(self, sent: Version) -> bool {
        sent.major == self.major && sent.minor <= self.minor
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What a handler knows of the message besides its arguments.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub request_id: Option<String>,
    pub method: String,
}

/// Refuses a message the server cannot read: a version it does not speak.
pub fn check_version(server: Version, msg: &Message) -> Result<(), RemoteError> {
    // A message without a version predates versioning: 1.0.
    let sent = if msg.version.is_empty() { Some(Version::new(1, 0)) } else { Version::parse(&msg.version) };
    match sent {
        Some(v) if server.can_serve(v) => Ok(()),
        _ => Err(RemoteError::new(
            "UnsupportedVersion",
            format!("{} was sent at version {:?}; this server speaks {server}", msg.method, msg.version),
        )),
    }
}

/// Decodes a method's arguments; a bad shape is the caller's error.
pub fn decode_args<T: DeserializeOwned>(msg: &Message) -> Result<T, RemoteError> {
    serde_json::from_value(msg.args.clone())
        .map_err(|e| RemoteError::new("BadArguments", format!("{}: unreadable arguments: {e}", msg.method)))
}

pub fn encode_reply<T: Serialize>(method: &str, value: Result<T, RemoteError>) -> Reply {
    let value = value?;
    serde_json::to_value(value).map_err(|e| RemoteError::new("Internal", format!("{method}: unencodable reply: {e}")))
}

pub fn encode_args<T: Serialize>(method: &str, args: &T) -> Result<Value, BusError> {
    serde_json::to_value(args).map_err(|e| BusError::Codec(format!("{method}: {e}")))
}

pub fn decode_reply<T: DeserializeOwned>(method: &str, value: Value) -> Result<T, BusError> {
    serde_json::from_value(value).map_err(|e| BusError::Codec(format!("the answer to {method}: {e}")))
}

pub fn unknown_method(interface: &str, msg: &Message) -> RemoteError {
    RemoteError::new("UnknownMethod", format!("{interface} has no method {:?}", msg.method))
}

/// Declares a typed RPC interface:
///
/// ```ignore
/// bus::interface! {
///     /// What hosts ask the conductor.
///     pub interface ConductorRpc {
///         topic: "conductor",
///         version: (1, 0),
///         client: ConductorClient,
///         handler: ConductorHandler,
///         methods: {
///             /// Reads one instance.
///             call instance_get(InstanceRef) -> Instance;
///             cast build_succeeded(HostRef) -> ();
///         }
///     }
/// }
/// ```
///
/// `call` waits for the answer, `cast` does not, `fanout` goes to every
/// server of the topic (casts and fanouts answer `()`).
#[macro_export]
macro_rules! interface {
    (
        $(#[$meta:meta])*
        pub interface $name:ident {
            topic: $topic:expr,
            version: ($major:literal, $minor:literal),
            client: $client:ident,
            handler: $handler:ident,
            methods: {
                $(
                    $(#[$mmeta:meta])*
                    $kind:ident $method:ident ($args:ty) -> $reply:ty;
                )*
            }
        }
    ) => {
        $(#[$meta])*
        pub struct $name;

        impl $name {
            pub const TOPIC: &'static str = $topic;
            pub const VERSION: $crate::Version = $crate::Version::new($major, $minor);
            /// Every method of the interface.
            pub const METHODS: &'static [&'static str] = &[$(stringify!($method)),*];

            /// Hands one message to the handler's method of that name.
            pub async fn dispatch<H: $handler + ?Sized>(handler: &H, msg: $crate::Message) -> $crate::Reply {
                $crate::__private::check_version(Self::VERSION, &msg)?;
                let ctx = $crate::CallContext { request_id: msg.request_id.clone(), method: msg.method.clone() };
                match msg.method.as_str() {
                    $(
                        stringify!($method) => {
                            let args: $args = $crate::__private::decode_args(&msg)?;
                            $crate::__private::encode_reply(&msg.method, handler.$method(&ctx, args).await)
                        }
                    )*
                    _ => Err($crate::__private::unknown_method(stringify!($name), &msg)),
                }
            }

            /// Serves the topic as `server` with `handler`.
            pub async fn serve<H: $handler>(
                bus: &$crate::Bus,
                server: &str,
                handler: ::std::sync::Arc<H>,
                options: $crate::ServeOptions,
            ) -> Result<$crate::__private::JoinHandle<()>, $crate::BusError> {
                bus.serve_with(Self::TOPIC, server, options, move |msg| {
                    let handler = handler.clone();
                    async move { Self::dispatch(&*handler, msg).await }
                })
                .await
            }
        }

        /// What a server of the interface implements, one method per RPC.
        pub trait $handler: Send + Sync + 'static {
            $(
                $(#[$mmeta])*
                fn $method(
                    &self,
                    ctx: &$crate::CallContext,
                    args: $args,
                ) -> impl ::std::future::Future<Output = Result<$reply, $crate::RemoteError>> + Send;
            )*
        }

        /// Sends the interface's messages, each method as it is declared.
        #[derive(Clone)]
        pub struct $client {
            bus: $crate::Bus,
            target: $crate::Target,
            request_id: Option<String>,
            timeout: Option<::std::time::Duration>,
        }

        #[allow(dead_code)]
        impl $client {
            /// A client for any server of the topic.
            pub fn new(bus: &$crate::Bus) -> Self {
                $client { bus: bus.clone(), target: $crate::Target::topic($topic), request_id: None, timeout: None }
            }

            /// A client for one server of the topic.
            pub fn to_server(bus: &$crate::Bus, server: &str) -> Self {
                $client {
                    bus: bus.clone(),
                    target: $crate::Target::server($topic, server),
                    request_id: None,
                    timeout: None,
                }
            }

            /// The same client, sending on behalf of the request `request_id`.
            pub fn for_request(&self, request_id: impl Into<Option<String>>) -> Self {
                let mut c = self.clone();
                c.request_id = request_id.into();
                c
            }

            /// The same client, waiting `timeout` for the answers to calls.
            pub fn with_timeout(&self, timeout: ::std::time::Duration) -> Self {
                let mut c = self.clone();
                c.timeout = Some(timeout);
                c
            }

            pub fn bus(&self) -> &$crate::Bus {
                &self.bus
            }

            fn message(&self, method: &str, args: $crate::__private::Value) -> $crate::Message {
                $crate::Message::new(method, args)
                    .with_version($name::VERSION)
                    .with_request_id(self.request_id.clone())
            }

            $(
                $crate::__client_method!($kind, $(#[$mmeta])* $method, $args, $reply);
            )*
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __client_method {
    (call, $(#[$mmeta:meta])* $method:ident, $args:ty, $reply:ty) => {
        $(#[$mmeta])*
        pub async fn $method(&self, args: &$args) -> Result<$reply, $crate::BusError> {
            let method = stringify!($method);
            let msg = self.message(method, $crate::__private::encode_args(method, args)?);
            let timeout = self.timeout.unwrap_or(self.bus.default_timeout());
            let value = self.bus.call_with_timeout(&self.target, msg, timeout).await?;
            $crate::__private::decode_reply(method, value)
        }
    };
    (cast, $(#[$mmeta:meta])* $method:ident, $args:ty, $reply:ty) => {
        $(#[$mmeta])*
        pub async fn $method(&self, args: &$args) -> Result<(), $crate::BusError> {
            let method = stringify!($method);
            let msg = self.message(method, $crate::__private::encode_args(method, args)?);
            self.bus.cast(&self.target, msg).await
        }
    };
    (fanout, $(#[$mmeta:meta])* $method:ident, $args:ty, $reply:ty) => {
        $(#[$mmeta])*
        pub async fn $method(&self, args: &$args) -> Result<(), $crate::BusError> {
            let method = stringify!($method);
            let msg = self.message(method, $crate::__private::encode_args(method, args)?);
            self.bus.fanout(&self.target.topic, msg).await
        }
    };
}
