//! Meal text -> items with a quantity, a unit and a food name.
//!
//! People write "I had 2 eggs and a slice of toast for breakfast", "lunch: 1½ cups rice +
//! chicken 200g", or "mac and cheese with a coke". The parser splits on commas, semicolons,
//! new lines, "+", "and", "with", "&", "plus", "on"; reads numbers, decimals, fractions (1/2, ½,
//! 1 1/2), ranges (2-3) and number words (a, an, one..twenty, half, a couple of, a few, a
//! dozen); units and sizes; and drops the chatter around the food ("ate", "for lunch", "this
//! morning", "at 8am"). Names a food table knows win over splitting, so "mac and cheese",
//! "salt and vinegar chips", "fish and chips" and "half and half" stay whole; "bread with
//! butter" and "coffee with milk" are two items.
//!
//! The parser never looks at nutrients: it takes a `knows_name` predicate (the table's) and
//! returns [`ParsedItem`]s. Any input, however odd, gives a (possibly empty) list, never a panic.

use super::units::{Size, Unit};

/// Input beyond this many characters is ignored (a meal is never that long).
const MAX_INPUT_CHARS: usize = 4_000;

/// One item of a meal as written.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedItem {
    /// The words of the item as the person wrote them ("2 slices of toast").
    pub input: String,
    /// `None` when no amount was given ("toast").
    pub quantity: Option<f64>,
    pub unit: Option<Unit>,
    /// The food words, lowercased ("toast").
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    Word(String),
    Number(f64),
    /// A "-" between two numbers (a range).
    Dash,
    /// Ends an item: , ; . ! ? : newline + / | and bullets.
    Break,
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: TokenKind,
    start: usize,
    end: usize,
}

impl Token {
    fn word(&self) -> Option<&str> {
        match &self.kind {
            TokenKind::Word(word) => Some(word),
            _ => None,
        }
    }
    fn number(&self) -> Option<f64> {
        match self.kind {
            TokenKind::Number(value) => Some(value),
            _ => None,
        }
    }
    fn is_word(&self, expected: &str) -> bool {
        self.word() == Some(expected)
    }
}

/// Splits a meal description into items. `knows_name` says whether a phrase is a food name
/// (exactly), which keeps names containing "and"/"with" whole.
pub fn parse_meal(text: &str, knows_name: &dyn Fn(&str) -> bool) -> Vec<ParsedItem> {
    let text = match text.char_indices().nth(MAX_INPUT_CHARS) {
        Some((cut, _)) => &text[..cut],
        None => text,
    };
    let tokens = tokenize(text);
    let mut items = Vec::new();
    for chunk in tokens.split(|token| token.kind == TokenKind::Break) {
        let chunk = merge_and_a_half(chunk);
        let chunk = strip_noise(&chunk);
        for piece in split_on_connectors(chunk, knows_name) {
            let piece = strip_noise(&piece);
            if piece.is_empty() {
                continue;
            }
            if let Some(item) = parse_piece(text, &piece, knows_name) {
                items.push(item);
            }
        }
    }
    items
}

/// The value of a Unicode vulgar fraction.
fn vulgar_fraction(character: char) -> Option<f64> {
    let value = match character {
        '½' => 0.5,
        '⅓' => 1.0 / 3.0,
        '⅔' => 2.0 / 3.0,
        '¼' => 0.25,
        '¾' => 0.75,
        '⅕' => 0.2,
        '⅖' => 0.4,
        '⅗' => 0.6,
        '⅘' => 0.8,
        '⅙' => 1.0 / 6.0,
        '⅚' => 5.0 / 6.0,
        '⅛' => 0.125,
        '⅜' => 0.375,
        '⅝' => 0.625,
        '⅞' => 0.875,
        _ => return None,
    };
    Some(value)
}

fn tokenize(text: &str) -> Vec<Token> {
    let characters: Vec<(usize, char)> = text.char_indices().collect();
    let end_of = |index: usize| {
        characters
            .get(index)
            .map_or(text.len(), |(offset, _)| *offset)
    };
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < characters.len() {
        let (start, character) = characters[index];
        if character.is_ascii_digit() {
            let mut cursor = index;
            while cursor < characters.len() && characters[cursor].1.is_ascii_digit() {
                cursor += 1;
            }
            // Decimal part: "2.5", or "2,5" when the comma is followed directly by a digit.
            if cursor + 1 < characters.len()
                && matches!(characters[cursor].1, '.' | ',')
                && characters[cursor + 1].1.is_ascii_digit()
            {
                cursor += 1;
                while cursor < characters.len() && characters[cursor].1.is_ascii_digit() {
                    cursor += 1;
                }
            }
            let literal: String = characters[index..cursor]
                .iter()
                .map(|(_, c)| if *c == ',' { '.' } else { *c })
                .collect();
            let mut value = literal.parse::<f64>().unwrap_or(0.0);
            // Time of day "8:30": a word, not an amount.
            if characters.get(cursor).is_some_and(|(_, c)| *c == ':')
                && characters
                    .get(cursor + 1)
                    .is_some_and(|(_, c)| c.is_ascii_digit())
            {
                let mut end = cursor + 1;
                while end < characters.len() && characters[end].1.is_ascii_digit() {
                    end += 1;
                }
                let word: String = characters[index..end].iter().map(|(_, c)| *c).collect();
                tokens.push(Token {
                    kind: TokenKind::Word(word),
                    start,
                    end: end_of(end),
                });
                index = end;
                continue;
            }
            // Fraction "1/2".
            if characters.get(cursor).is_some_and(|(_, c)| *c == '/')
                && characters
                    .get(cursor + 1)
                    .is_some_and(|(_, c)| c.is_ascii_digit())
            {
                let mut end = cursor + 1;
                while end < characters.len() && characters[end].1.is_ascii_digit() {
                    end += 1;
                }
                let denominator: String = characters[cursor + 1..end]
                    .iter()
                    .map(|(_, c)| *c)
                    .collect();
                let denominator = denominator.parse::<f64>().unwrap_or(0.0);
                if denominator > 0.0 {
                    value /= denominator;
                }
                cursor = end;
            }
            // "2%" belongs to a name ("2% milk").
            if characters.get(cursor).is_some_and(|(_, c)| *c == '%') {
                let word: String = characters[index..=cursor].iter().map(|(_, c)| *c).collect();
                tokens.push(Token {
                    kind: TokenKind::Word(word),
                    start,
                    end: end_of(cursor + 1),
                });
                index = cursor + 1;
                continue;
            }
            // "1½"
            if let Some(fraction) = characters
                .get(cursor)
                .and_then(|(_, c)| vulgar_fraction(*c))
            {
                value += fraction;
                cursor += 1;
            }
            let value = if value.is_finite() { value } else { 0.0 };
            tokens.push(Token {
                kind: TokenKind::Number(value),
                start,
                end: end_of(cursor),
            });
            index = cursor;
            continue;
        }
        if let Some(fraction) = vulgar_fraction(character) {
            tokens.push(Token {
                kind: TokenKind::Number(fraction),
                start,
                end: end_of(index + 1),
            });
            index += 1;
            continue;
        }
        if character.is_alphabetic() {
            let mut cursor = index;
            while cursor < characters.len() {
                let current = characters[cursor].1;
                let joins_word = (current == '\'' || current == '’')
                    && characters
                        .get(cursor + 1)
                        .is_some_and(|(_, c)| c.is_alphabetic());
                if current.is_alphabetic() || joins_word {
                    cursor += 1;
                } else {
                    break;
                }
            }
            let word: String = characters[index..cursor]
                .iter()
                .flat_map(|(_, c)| c.to_lowercase())
                .map(|c| {
                    if c == '’' {
                        '\''
                    } else {
                        super::text::fold_accent(c)
                    }
                })
                .collect();
            // "w/" means "with".
            if word == "w" && characters.get(cursor).is_some_and(|(_, c)| *c == '/') {
                tokens.push(Token {
                    kind: TokenKind::Word("with".into()),
                    start,
                    end: end_of(cursor + 1),
                });
                index = cursor + 1;
                continue;
            }
            tokens.push(Token {
                kind: TokenKind::Word(word),
                start,
                end: end_of(cursor),
            });
            index = cursor;
            continue;
        }
        let kind = match character {
            ',' | ';' | '.' | '!' | '?' | ':' | '\n' | '\r' | '+' | '/' | '|' | '•' | '·'
            | '\t' => Some(TokenKind::Break),
            '&' => Some(TokenKind::Word("&".into())),
            '-' | '–' | '—' => {
                let previous_is_number =
                    tokens.last().is_some_and(|t: &Token| t.number().is_some());
                let next_is_digit = characters
                    .get(index + 1)
                    .is_some_and(|(_, c)| c.is_ascii_digit());
                (previous_is_number && next_is_digit).then_some(TokenKind::Dash)
            }
            _ => None,
        };
        if let Some(kind) = kind {
            tokens.push(Token {
                kind,
                start,
                end: end_of(index + 1),
            });
        }
        index += 1;
    }
    tokens
}

/// A whole number written as a word ("one" to "fifteen", "twenty").
pub(crate) fn cardinal_word(word: &str) -> Option<f64> {
    let value = match word {
        "one" => 1.0,
        "two" => 2.0,
        "three" => 3.0,
        "four" => 4.0,
        "five" => 5.0,
        "six" => 6.0,
        "seven" => 7.0,
        "eight" => 8.0,
        "nine" => 9.0,
        "ten" => 10.0,
        "eleven" => 11.0,
        "twelve" => 12.0,
        "thirteen" => 13.0,
        "fourteen" => 14.0,
        "fifteen" => 15.0,
        "twenty" => 20.0,
        _ => return None,
    };
    Some(value)
}

/// Reads a number word ("one", "twelve", "half", "dozen").
fn number_word(word: &str) -> Option<f64> {
    if let Some(value) = cardinal_word(word) {
        return Some(value);
    }
    let value = match word {
        "single" => 1.0,
        "dozen" => 12.0,
        "half" => 0.5,
        "quarter" => 0.25,
        "third" => 1.0 / 3.0,
        "couple" | "pair" => 2.0,
        "few" | "several" => 3.0,
        "double" => 2.0,
        _ => return None,
    };
    Some(value)
}

fn quantity_value(token: &Token) -> Option<f64> {
    token
        .number()
        .or_else(|| token.word().and_then(number_word))
}

/// "one and a half", "2 and 1/2" -> one number, before "and" can split them apart.
fn merge_and_a_half(chunk: &[Token]) -> Vec<Token> {
    let mut merged: Vec<Token> = Vec::with_capacity(chunk.len());
    let mut index = 0;
    while index < chunk.len() {
        let token = &chunk[index];
        let whole = token.number().or_else(|| {
            token
                .word()
                .and_then(number_word)
                .filter(|value| *value >= 1.0 && value.fract() == 0.0)
        });
        if let Some(whole) = whole {
            if chunk.get(index + 1).is_some_and(|t| t.is_word("and")) {
                let mut cursor = index + 2;
                if chunk
                    .get(cursor)
                    .is_some_and(|t| t.is_word("a") || t.is_word("one"))
                {
                    cursor += 1;
                }
                let fraction = chunk.get(cursor).and_then(|t| {
                    t.number().filter(|value| *value < 1.0).or_else(|| {
                        t.word().and_then(|word| match word {
                            "half" => Some(0.5),
                            "quarter" => Some(0.25),
                            "third" => Some(1.0 / 3.0),
                            _ => None,
                        })
                    })
                });
                if let Some(fraction) = fraction {
                    merged.push(Token {
                        kind: TokenKind::Number(whole + fraction),
                        start: token.start,
                        end: chunk[cursor].end,
                    });
                    index = cursor + 1;
                    continue;
                }
            }
        }
        merged.push(token.clone());
        index += 1;
    }
    merged
}

const MEAL_WORDS: &[&str] = &[
    "breakfast",
    "brunch",
    "lunch",
    "dinner",
    "supper",
    "snack",
    "snacks",
];
const TIME_OF_DAY_WORDS: &[&str] = &["morning", "afternoon", "evening", "night", "noon", "midday"];
const LEADING_NOISE: &[&str] = &[
    "i",
    "i've",
    "ive",
    "i'd",
    "i'm",
    "im",
    "we",
    "we've",
    "just",
    "also",
    "then",
    "had",
    "have",
    "has",
    "having",
    "ate",
    "eaten",
    "eat",
    "eating",
    "drank",
    "drink",
    "drinking",
    "drunk",
    "got",
    "grabbed",
    "snacked",
    "consumed",
    "enjoyed",
    "today",
    "yesterday",
    "tonight",
    "earlier",
    "so",
    "ok",
    "okay",
    "oh",
    "well",
    "um",
    "uh",
    "and",
    "with",
    "plus",
    "about",
    "around",
    "approximately",
    "approx",
    "roughly",
    "maybe",
    "probably",
    "like",
    "log",
    "add",
    "track",
    "record",
    "please",
    "some",
    "my",
    "our",
    "the",
    "on",
    "then",
    "lastly",
    "finally",
    "also",
    "hi",
    "hey",
    "hello",
    "dear",
    "for",
    "was",
    "were",
    "is",
    "it",
    "that",
    "this",
];
const TRAILING_NOISE: &[&str] = &[
    "today",
    "yesterday",
    "tonight",
    "earlier",
    "too",
    "also",
    "please",
    "lol",
    "thanks",
    "thank",
    "you",
    "now",
    "again",
    "only",
    "though",
];

fn is_time_token(token: &Token) -> bool {
    match &token.kind {
        TokenKind::Number(value) => (0.0..=24.0).contains(value),
        TokenKind::Word(word) => {
            word.contains(':')
                || matches!(
                    word.as_str(),
                    "noon" | "midnight" | "am" | "pm" | "oclock" | "o'clock"
                )
        }
        _ => false,
    }
}

/// Removes chatter at both ends of an item: "I had", "for breakfast", "this morning", "at 8am".
fn strip_noise(tokens: &[Token]) -> Vec<Token> {
    let mut start = 0;
    let mut end = tokens.len();
    loop {
        let before = (start, end);
        // Leading.
        while start < end {
            let word = tokens[start].word();
            let next = tokens.get(start + 1).filter(|_| start + 1 < end);
            let next_word = next.and_then(Token::word);
            match word {
                Some("for") if next_word.is_some_and(|w| MEAL_WORDS.contains(&w)) => start += 2,
                Some("for" | "as") if next_word == Some("a") => {
                    if tokens
                        .get(start + 2)
                        .filter(|_| start + 2 < end)
                        .is_some_and(|t| t.word().is_some_and(|w| MEAL_WORDS.contains(&w)))
                    {
                        start += 3;
                    } else {
                        break;
                    }
                }
                Some(meal)
                    if MEAL_WORDS.contains(&meal)
                        && (start + 1 == end
                            || next_word
                                .is_some_and(|w| matches!(w, "was" | "is" | "i" | "we"))) =>
                {
                    start += 1
                }
                Some("this" | "last" | "in" | "at")
                    if next_word.is_some_and(|w| TIME_OF_DAY_WORDS.contains(&w)) =>
                {
                    start += 2
                }
                Some("in") if next_word == Some("the") => {
                    if tokens
                        .get(start + 2)
                        .filter(|_| start + 2 < end)
                        .is_some_and(|t| t.word().is_some_and(|w| TIME_OF_DAY_WORDS.contains(&w)))
                    {
                        start += 3;
                    } else {
                        break;
                    }
                }
                Some("at" | "around") if next.is_some_and(is_time_token) => {
                    start += 2;
                    while start < end
                        && tokens[start]
                            .word()
                            .is_some_and(|w| matches!(w, "am" | "pm"))
                    {
                        start += 1;
                    }
                }
                Some(noise) if LEADING_NOISE.contains(&noise) => {
                    // "some" and "the" before a number word are noise; "a" is a quantity.
                    start += 1
                }
                _ => break,
            }
        }
        // Trailing.
        while end > start {
            let last = &tokens[end - 1];
            let previous_word = if end >= start + 2 {
                tokens[end - 2].word()
            } else {
                None
            };
            if last.number().is_some() && matches!(previous_word, Some("at" | "around")) {
                end -= 2;
                continue;
            }
            match last.word() {
                Some(meal)
                    if MEAL_WORDS.contains(&meal)
                        && matches!(previous_word, Some("for" | "at" | "with")) =>
                {
                    end -= 2
                }
                Some(meal)
                    if MEAL_WORDS.contains(&meal)
                        && previous_word == Some("a")
                        && end >= start + 3
                        && tokens[end - 3]
                            .word()
                            .is_some_and(|w| matches!(w, "for" | "as")) =>
                {
                    end -= 3
                }
                Some(time)
                    if TIME_OF_DAY_WORDS.contains(&time)
                        && matches!(
                            previous_word,
                            Some("this" | "last" | "in" | "at" | "the" | "yesterday")
                        ) =>
                {
                    end -= 2;
                    if end > start && tokens[end - 1].word() == Some("in") {
                        end -= 1;
                    }
                }
                Some("am" | "pm") | Some("noon" | "midnight")
                    if end >= start + 2 && tokens[end - 2].number().is_some()
                        || previous_word == Some("at") =>
                {
                    end -= 1;
                    if end > start && tokens[end - 1].number().is_some() {
                        end -= 1;
                    }
                    if end > start
                        && tokens[end - 1]
                            .word()
                            .is_some_and(|w| matches!(w, "at" | "around"))
                    {
                        end -= 1;
                    }
                }
                Some(word)
                    if word.contains(':')
                        && previous_word.is_some_and(|w| matches!(w, "at" | "around")) =>
                {
                    end -= 2
                }
                Some("well") if previous_word == Some("as") => end -= 2,
                Some("ago") => {
                    // "3 days ago", "two days ago", "a week ago"
                    end -= 1;
                    if end > start
                        && tokens[end - 1]
                            .word()
                            .is_some_and(|w| matches!(w, "day" | "days" | "week" | "weeks"))
                    {
                        end -= 1;
                        if end > start
                            && (quantity_value(&tokens[end - 1]).is_some()
                                || tokens[end - 1]
                                    .word()
                                    .is_some_and(|w| matches!(w, "a" | "an")))
                        {
                            end -= 1;
                        }
                    }
                }
                Some(noise) if TRAILING_NOISE.contains(&noise) => end -= 1,
                Some(
                    "and" | "with" | "plus" | "&" | "of" | "a" | "an" | "the" | "some" | "for"
                    | "at",
                ) => end -= 1,
                None if last.kind == TokenKind::Dash => end -= 1,
                _ => break,
            }
        }
        if (start, end) == before {
            break;
        }
    }
    tokens[start..end].to_vec()
}

fn is_connector(token: &Token) -> bool {
    matches!(
        token.word(),
        Some("and" | "with" | "&" | "plus" | "then" | "alongside" | "on")
    )
}

/// What may follow "on" without being a food: "on the side", "on monday", "on top".
fn on_is_not_food(next_words: &str) -> bool {
    const NOT_FOOD: &[&str] = &[
        "the side",
        "side",
        "top",
        "the go",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "the way",
        "my way",
        "a diet",
        "the plane",
        "the train",
    ];
    NOT_FOOD
        .iter()
        .any(|phrase| next_words == *phrase || next_words.starts_with(&format!("{phrase} ")))
}

/// The words of tokens joined by spaces (numbers written back as digits).
fn words_of(tokens: &[Token]) -> String {
    let mut words = Vec::with_capacity(tokens.len());
    for token in tokens {
        match &token.kind {
            TokenKind::Word(word) => words.push(word.clone()),
            TokenKind::Number(value) => words.push(format!("{value}")),
            _ => {}
        }
    }
    words.join(" ")
}

/// Splits a chunk at "and" / "with" / "&" / "plus" / "on", then glues back pieces whose joined
/// words are a known food name ("mac" + "and" + "cheese", "corn" + "on" + "the cob"); drops
/// what follows an "on" that is no food ("fries on the side").
fn split_on_connectors(chunk: Vec<Token>, knows_name: &dyn Fn(&str) -> bool) -> Vec<Vec<Token>> {
    let mut pieces: Vec<Vec<Token>> = vec![Vec::new()];
    let mut connectors: Vec<Token> = Vec::new();
    for token in chunk {
        if is_connector(&token) {
            connectors.push(token);
            pieces.push(Vec::new());
        } else if let Some(last) = pieces.last_mut() {
            last.push(token);
        }
    }
    let mut result: Vec<Vec<Token>> = Vec::new();
    let mut pieces = pieces.into_iter();
    let Some(mut current) = pieces.next() else {
        return result;
    };
    for (connector, next) in connectors.into_iter().zip(pieces) {
        // Any tail of the current piece may start the name: "2 tbsp half" + "and" + "half".
        let connector_word = words_of(std::slice::from_ref(&connector));
        let next_words = words_of(&next);
        if connector_word == "on" && on_is_not_food(&next_words) {
            // "fries on the side", "pasta on monday": what follows is no food.
            continue;
        }
        let joins = !next.is_empty()
            && (0..current.len()).any(|start| {
                let candidate = format!(
                    "{} {connector_word} {next_words}",
                    words_of(&current[start..])
                );
                knows_name(candidate.trim())
            });
        if joins {
            current.push(connector);
            current.extend(next);
        } else {
            if !current.is_empty() {
                result.push(current);
            }
            current = next;
        }
    }
    if !current.is_empty() {
        result.push(current);
    }
    result
}

/// What the person wrote for one item: `text[start..end]`, with the closing brackets that
/// belong to it ("spinach (raw)": the ")" is no token, but it is part of what was written).
fn input_text(text: &str, start: usize, end: usize) -> String {
    let mut end = end;
    let mut open = text.get(start..end).map_or(0, |written| {
        written
            .matches('(')
            .count()
            .saturating_sub(written.matches(')').count())
    });
    while open > 0 && text.get(end..).is_some_and(|rest| rest.starts_with(')')) {
        end += 1;
        open -= 1;
    }
    text.get(start..end).unwrap_or_default().trim().to_owned()
}

/// Reads amount, size, unit and name from one item's tokens.
fn parse_piece(
    text: &str,
    tokens: &[Token],
    knows_name: &dyn Fn(&str) -> bool,
) -> Option<ParsedItem> {
    let first = tokens.first()?;
    let last = tokens.last()?;
    let input = input_text(text, first.start, last.end);
    let all_words = words_of(tokens);
    if first.number().is_none() && knows_name(&all_words) {
        return Some(ParsedItem {
            input,
            quantity: None,
            unit: None,
            name: all_words,
        });
    }

    let mut index = 0;
    let mut quantity: Option<f64> = None;
    let word_at = |index: usize| tokens.get(index).and_then(Token::word);

    // Quantity.
    if let Some(value) = tokens[0].number() {
        quantity = Some(value);
        index = 1;
        // "1 1/2", "1 ½"
        if let Some(fraction) = tokens.get(1).and_then(Token::number) {
            if fraction < 1.0 && value.fract() == 0.0 {
                quantity = Some(value + fraction);
                index = 2;
            }
        }
        // Ranges "2-3", "2 to 3", "2 or 3".
        let range_marker = tokens
            .get(index)
            .is_some_and(|t| t.kind == TokenKind::Dash || t.is_word("to") || t.is_word("or"));
        if range_marker {
            if let Some(upper) = tokens.get(index + 1).and_then(quantity_value) {
                quantity = quantity.map(|lower| (lower + upper) / 2.0);
                index += 2;
            }
        }
    } else if let Some(word) = word_at(0) {
        match (word, word_at(1), word_at(2)) {
            ("a" | "an", Some("couple" | "pair"), _) => {
                quantity = Some(2.0);
                index = 2;
            }
            ("a" | "an", Some("few"), _) => {
                quantity = Some(3.0);
                index = 2;
            }
            ("a" | "an", Some("half" | "quarter" | "third" | "dozen"), _) => {
                quantity = word_at(1).and_then(number_word);
                index = 2;
            }
            ("a" | "an", Some("bit" | "little" | "lot" | "touch" | "splash" | "drizzle"), _) => {
                index = 2;
                if word_at(2) == Some("bit") {
                    index = 3;
                }
            }
            ("a" | "an", _, _) => {
                quantity = Some(1.0);
                index = 1;
            }
            (word, next, _) => {
                if let Some(value) = number_word(word) {
                    // "few" alone is 3, "half" alone is 0.5 ...
                    let ambiguous = matches!(word, "double" | "single") && next.is_none();
                    if !ambiguous {
                        quantity = Some(value);
                        index = 1;
                    }
                }
            }
        }
        // "two and a half" already merged; "two-thirds" is rare enough to ignore.
        if let (Some(value), Some(upper)) =
            (quantity, tokens.get(index + 1).and_then(quantity_value))
        {
            if tokens
                .get(index)
                .is_some_and(|t| t.is_word("to") || t.is_word("or"))
                && value >= 1.0
            {
                quantity = Some((value + upper) / 2.0);
                index += 2;
            }
        }
    }
    // "2 dozen", "half a dozen", "x2"
    if quantity.is_some() {
        if word_at(index) == Some("a") && word_at(index + 1) == Some("dozen") {
            index += 1;
        }
        if word_at(index) == Some("dozen") {
            quantity = quantity.map(|value| value * 12.0);
            index += 1;
        }
        if word_at(index) == Some("x") {
            index += 1;
        }
        // "half a cup", "half an avocado", "half of the pizza"
        while matches!(word_at(index), Some("a" | "an" | "of" | "the")) {
            index += 1;
        }
    }

    // Size.
    let mut size = None;
    loop {
        match (word_at(index), word_at(index + 1)) {
            (Some("extra" | "x" | "very"), Some("large" | "big")) => {
                size = Some(Size::ExtraLarge);
                index += 2;
            }
            (Some(word), _) if Size::from_word(word).is_some() => {
                size = Size::from_word(word);
                index += 1;
            }
            (Some("sized" | "size"), _) if size.is_some() => index += 1,
            _ => break,
        }
    }

    // Unit.
    let mut unit = None;
    let rest_after = |from: usize| words_of(tokens.get(from..).unwrap_or_default());
    match (word_at(index), word_at(index + 1)) {
        (Some("fl" | "fluid"), Some("oz" | "ounce" | "ounces")) => {
            unit = Some(Unit::FluidOunce);
            index += 2;
        }
        (Some(word), _) => {
            if let Some(standard) = Unit::from_word(word) {
                // A unit needs a food after it ("2 cans" alone is not an item).
                if index + 1 < tokens.len() {
                    unit = Some(standard);
                    index += 1;
                }
            } else if let Some(named) = Unit::named_from_word(word) {
                let followed_by_of = word_at(index + 1) == Some("of");
                let rest_known = index + 1 < tokens.len() && knows_name(&rest_after(index + 1));
                let with_word_known = knows_name(&rest_after(index));
                if (followed_by_of || rest_known) && !with_word_known && index + 1 < tokens.len() {
                    unit = Some(named);
                    index += 1;
                }
            }
        }
        _ => {}
    }
    while matches!(word_at(index), Some("of" | "the" | "a" | "an" | "some"))
        && index + 1 < tokens.len()
    {
        index += 1;
    }

    let mut name_tokens: Vec<Token> = tokens.get(index..).unwrap_or_default().to_vec();

    // Amount written after the name: "chicken 200g", "eggs x2", "eggs 2x", "rice 1 cup".
    if quantity.is_none() && unit.is_none() && name_tokens.len() >= 2 {
        let count = name_tokens.len();
        let last_word = name_tokens[count - 1].word().map(str::to_owned);
        let last_number = name_tokens[count - 1].number();
        let before_word = name_tokens[count - 2].word().map(str::to_owned);
        let before_number = name_tokens[count - 2].number();
        let trailing_unit = last_word.as_deref().and_then(Unit::from_word);
        if let (Some(trailing_unit), Some(value)) = (trailing_unit, before_number) {
            quantity = Some(value);
            unit = Some(trailing_unit);
            name_tokens.truncate(count - 2);
        } else if let (Some(value), Some("x")) = (last_number, before_word.as_deref()) {
            quantity = Some(value);
            name_tokens.truncate(count - 2);
        } else if let (Some("x"), Some(value)) = (last_word.as_deref(), before_number) {
            quantity = Some(value);
            name_tokens.truncate(count - 2);
        } else if let (Some(value), Some(_)) = (last_number, before_word) {
            quantity = Some(value);
            name_tokens.truncate(count - 1);
        }
    }
    if unit.is_none() {
        unit = size.map(Unit::Size);
    }
    let name = words_of(&name_tokens);
    if !name.chars().any(char::is_alphabetic) {
        // No food words at all ("2", "9 g 0"): report the whole item so it shows as unknown.
        return Some(ParsedItem {
            input,
            quantity,
            unit,
            name: String::new(),
        });
    }
    let quantity = quantity.map(|value| {
        if value.is_finite() && value > 0.0 {
            value
        } else {
            0.0
        }
    });
    Some(ParsedItem {
        input,
        quantity,
        unit,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nutrition::table::FoodTable;

    fn parse(text: &str) -> Vec<ParsedItem> {
        let table = FoodTable::builtin();
        parse_meal(text, &|name| table.knows_name(name))
    }

    fn summary(text: &str) -> Vec<(Option<f64>, Option<Unit>, String)> {
        parse(text)
            .into_iter()
            .map(|item| (item.quantity, item.unit, item.name))
            .collect()
    }

    #[test]
    fn separators_and_connectors_split_items() {
        let items = summary("2 eggs, toast; coffee\nbanana + apple and pear with milk & honey");
        let names: Vec<&str> = items.iter().map(|(_, _, name)| name.as_str()).collect();
        assert_eq!(
            names,
            ["eggs", "toast", "coffee", "banana", "apple", "pear", "milk", "honey"]
        );
        assert_eq!(items[0].0, Some(2.0));
    }

    #[test]
    fn each_item_keeps_what_the_person_wrote_with_its_brackets() {
        let inputs: Vec<String> = parse("64 g spinach (raw), 2 eggs (scrambled) and toast")
            .into_iter()
            .map(|item| item.input)
            .collect();
        assert_eq!(
            inputs,
            ["64 g spinach (raw)", "2 eggs (scrambled)", "toast"]
        );
        // A bracket the person did not close is not closed for them.
        assert_eq!(parse("rice (brown")[0].input, "rice (brown");
    }

    #[test]
    fn on_separates_a_spread_from_what_it_is_on() {
        let names = |text: &str| {
            summary(text)
                .into_iter()
                .map(|(_, _, name)| name)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names("3 tbsp peanut butter on 2 slices of whole wheat bread"),
            ["peanut butter", "whole wheat bread"]
        );
        assert_eq!(names("corn on the cob"), ["corn on the cob"]);
        assert_eq!(names("fries on the side"), ["fries"]);
        assert_eq!(names("pasta on monday"), ["pasta"]);
    }

    #[test]
    fn known_names_with_and_or_with_stay_whole() {
        let names = |text: &str| {
            summary(text)
                .into_iter()
                .map(|(_, _, name)| name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names("a bowl of mac and cheese"), ["mac and cheese"]);
        assert_eq!(names("salt and vinegar chips"), ["salt and vinegar chips"]);
        assert_eq!(
            names("fish and chips and a beer"),
            ["fish and chips", "beer"]
        );
        assert_eq!(
            names("coffee with half and half"),
            ["coffee", "half and half"]
        );
        assert_eq!(names("bread with butter"), ["bread", "butter"]);
        assert_eq!(names("coffee with milk"), ["coffee", "milk"]);
        assert_eq!(
            names("peanut butter and jelly sandwich"),
            ["peanut butter and jelly sandwich"]
        );
    }

    #[test]
    fn quantities_in_numbers_fractions_and_words() {
        let first = |text: &str| {
            summary(text)
                .into_iter()
                .next()
                .map(|(quantity, unit, _)| (quantity, unit))
        };
        assert_eq!(first("1/2 cup rice"), Some((Some(0.5), Some(Unit::Cup))));
        assert_eq!(first("½ cup rice"), Some((Some(0.5), Some(Unit::Cup))));
        assert_eq!(first("1 1/2 cups rice"), Some((Some(1.5), Some(Unit::Cup))));
        assert_eq!(first("1½ cups rice"), Some((Some(1.5), Some(Unit::Cup))));
        assert_eq!(
            first("one and a half cups of rice"),
            Some((Some(1.5), Some(Unit::Cup)))
        );
        assert_eq!(first("2.5 oz cheese"), Some((Some(2.5), Some(Unit::Ounce))));
        assert_eq!(first("200g chicken"), Some((Some(200.0), Some(Unit::Gram))));
        assert_eq!(first("half an avocado"), Some((Some(0.5), None)));
        assert_eq!(
            first("half a cup of oats"),
            Some((Some(0.5), Some(Unit::Cup)))
        );
        assert_eq!(first("a couple of eggs"), Some((Some(2.0), None)));
        assert_eq!(first("a few almonds"), Some((Some(3.0), None)));
        assert_eq!(first("a dozen eggs"), Some((Some(12.0), None)));
        assert_eq!(first("2-3 eggs"), Some((Some(2.5), None)));
        assert_eq!(
            first("twelve oz steak"),
            Some((Some(12.0), Some(Unit::Ounce)))
        );
        assert_eq!(
            first("8 fl oz orange juice"),
            Some((Some(8.0), Some(Unit::FluidOunce)))
        );
        assert_eq!(
            first("a large egg"),
            Some((Some(1.0), Some(Unit::Size(Size::Large))))
        );
        assert_eq!(
            first("an extra large egg"),
            Some((Some(1.0), Some(Unit::Size(Size::ExtraLarge))))
        );
        assert_eq!(
            first("3 cloves of garlic"),
            Some((Some(3.0), Some(Unit::Named("clove".into()))))
        );
        assert_eq!(
            first("chicken breast 200 g"),
            Some((Some(200.0), Some(Unit::Gram)))
        );
        assert_eq!(first("eggs x2"), Some((Some(2.0), None)));
        assert_eq!(first("a pint of beer"), Some((Some(1.0), Some(Unit::Pint))));
    }

    #[test]
    fn chatter_around_the_food_is_dropped() {
        let items = summary("I had 2 eggs and toast for breakfast this morning");
        let names: Vec<&str> = items.iter().map(|(_, _, name)| name.as_str()).collect();
        assert_eq!(names, ["eggs", "toast"]);
        let items = summary("Lunch: a turkey sandwich at 12:30");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].2, "turkey sandwich");
        let items = summary("ate a banana at 8am");
        assert_eq!(items[0].2, "banana");
        let items = summary("for dinner I had salmon with rice");
        let names: Vec<&str> = items.iter().map(|(_, _, name)| name.as_str()).collect();
        assert_eq!(names, ["salmon", "rice"]);
        let items = summary("2% milk");
        assert_eq!(items[0].2, "2% milk");
    }

    #[test]
    fn the_input_of_each_item_is_its_own_text() {
        let items = parse("I ate 2 slices of toast with butter");
        let inputs: Vec<&str> = items.iter().map(|item| item.input.as_str()).collect();
        assert_eq!(inputs, ["2 slices of toast", "butter"]);
    }

    #[test]
    fn strange_input_never_panics() {
        let long = "and ".repeat(5_000);
        let strange = [
            "",
            " ",
            "\n\n",
            ",,,;;;",
            "½",
            "1/0 cup rice",
            "9999999999999999999999 eggs",
            "🍕🍕🍕",
            "🍕 and 🍔",
            "ééé",
            "a",
            "an and the",
            "2-",
            "-2",
            "2 - - 3",
            "1e309 g rice",
            "%%%",
            "x x x",
            "w/ w/",
            "\u{0}\u{1}",
            "ß",
            "İstanbul kebab",
            "日本の寿司",
            "3/",
            "/3",
            "1..2 eggs",
            "0 eggs",
            "-5 eggs",
            "\u{200b}eggs",
            "egg\u{301}s",
            "10:30:45",
            "at",
            "for breakfast",
            "and and and",
            &long,
        ];
        for text in strange {
            let items = parse(text);
            for item in items {
                assert!(
                    item.quantity.is_none_or(|q| q.is_finite() && q >= 0.0),
                    "{text:?}"
                );
            }
        }
        // A pseudo-random sweep over mixed characters.
        let alphabet: Vec<char> = "a1 ½/,.-+&x🍕é\n:gcup".chars().collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2_000 {
            let mut text = String::new();
            for _ in 0..(state % 24) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let _ = parse(&text);
        }
    }
}
