//! One log line per event on stderr, starting with the process's service
//! (`conductor`, `compute`, …) and carrying the request id of the work that
//! caused it. `RUST_LOG` overrides the default filter.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{DefaultFields, Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The default format with the service's name in front, so the logs of a
/// cloud's processes can be read merged.
struct WithService {
    service: &'static str,
    inner: Format,
}

impl<S, N> FormatEvent<S, N> for WithService
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        write!(writer, "{} ", self.service)?;
        self.inner.format_event(ctx, writer, event)
    }
}

pub fn init(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .fmt_fields(DefaultFields::new())
        .event_format(WithService { service, inner: Format::default().with_target(false).with_ansi(ansi) })
        .try_init();
}
