use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A place in a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// The bytes of the source the location is about (its start is at `line` and
    /// `column`), so that a report can underline all of them; `None` where only the
    /// point is known.
    pub span: Option<Span>,
}

impl Location {
    /// The location of byte `offset` of `source`. An offset past the end is the end;
    /// one inside a multi-byte character is that character.
    pub fn from_offset(file: &Path, source: &str, offset: usize) -> Location {
        Lines::of(source).locate(file, source, offset)
    }

    /// The location of the bytes `span` of `source`: its start, as
    /// [`Self::from_offset`], with the span kept (clamped to the source).
    pub fn from_span(file: &Path, source: &str, span: &Span) -> Location {
        Lines::of(source).locate_span(file, source, span)
    }
}

/// Where each line of a text starts, so that locating an offset is a binary
/// search rather than a count from the start: a manifest with an error per
/// nanoprocess would otherwise cost the square of its size.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lines(Vec<usize>);

impl Lines {
    pub(crate) fn of(source: &str) -> Lines {
        Lines(
            std::iter::once(0)
                .chain(source.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        )
    }

    /// The location of byte `offset` of `source` (the text these lines are of).
    pub(crate) fn locate(&self, file: &Path, source: &str, offset: usize) -> Location {
        let offset = source.floor_char_boundary(offset.min(source.len()));
        // The number of lines starting at or before the offset, at least one (0 is).
        let line = self.0.partition_point(|&start| start <= offset).max(1);
        let line_start = self.0.get(line - 1).copied().unwrap_or(0);
        let column = source[line_start..offset].chars().count() + 1;
        Location {
            file: file.to_path_buf(),
            line,
            column,
            span: None,
        }
    }

    /// The location of the bytes `span` of `source`: where it starts, with the span
    /// kept, clamped to the source and to character boundaries.
    pub(crate) fn locate_span(&self, file: &Path, source: &str, span: &Span) -> Location {
        let start = source.floor_char_boundary(span.start.min(source.len()));
        let end = source.ceil_char_boundary(span.end.clamp(start, source.len()));
        Location {
            span: Some(start..end),
            ..self.locate(file, source, start)
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One thing wrong with a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    pub location: Option<Location>,
    pub message: String,
    /// What the user can do about it.
    pub help: Option<String>,
}

impl ManifestError {
    pub fn new(location: Option<Location>, message: impl Into<String>) -> Self {
        Self {
            location,
            message: message.into(),
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

/// Every error found in a manifest: it is read to the end so the user sees them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestErrors(pub Vec<ManifestError>);

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestErrors {}

/// A span in the manifest source, kept so that later stages (attenuation, type
/// checks) can point at the line that asked for something.
pub type Span = Range<usize>;
