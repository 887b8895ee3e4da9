//! Text normalisation shared by the parser, the food matcher and the vision consensus.
//!
//! People type "Tomatoes", "tomato", "TOMATOS" and "jalapeño": all must land on the same table
//! row. Both the table's names and the person's words go through [`normalize_words`], so the
//! rules only have to be consistent, not linguistically perfect. Nothing here allocates more
//! than the input size and nothing can panic on odd Unicode.
//!
//! The one copy of the singulariser ([`singular`]) and of the bounded edit distance
//! ([`edit_distance_within`] for typed words, [`levenshtein_within`] for the consensus, which
//! counts a swap as two edits) lives here.

/// Words that describe a preparation or are filler: they count for little when matching, so
/// "grilled salmon" still finds "salmon" while "raw broccoli" prefers the raw row.
const DESCRIPTOR_WORDS: &[&str] = &[
    "raw",
    "fresh",
    "cooked",
    "boiled",
    "steamed",
    "grilled",
    "roasted",
    "roast",
    "baked",
    "broiled",
    "sauteed",
    "drained",
    "without",
    "salt",
    "added",
    "plain",
    "regular",
    "prepared",
    "commercially",
    "homemade",
    "home",
    "organic",
    "sliced",
    "chopped",
    "diced",
    "minced",
    "shredded",
    "whole",
    "enriched",
    "nf",
    "nfs",
    "ns",
    "all",
    "variety",
    "type",
    "ready",
    "serve",
    "solid",
    "leftover",
    "hot",
    "cold",
    "warm",
    "iced",
    "light",
    "lean",
    "skinless",
    "boneless",
    "frozen",
    "canned",
    "small",
    "medium",
    "large",
];

/// Words that carry no food meaning at all.
const STOP_WORDS: &[&str] = &[
    "of", "the", "a", "an", "in", "on", "some", "my", "for", "to", "from", "or", "style",
];

/// How much a word counts when scoring a match.
pub(crate) fn word_weight(word: &str) -> f64 {
    if STOP_WORDS.contains(&word) {
        0.15
    } else if DESCRIPTOR_WORDS.contains(&word) {
        0.3
    } else {
        1.0
    }
}

/// Lowercase, fold common accents, turn "%" into "percent" and everything that is not a letter
/// or digit into a space; returns the words (not singularised).
pub(crate) fn plain_words(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    for character in text.chars() {
        if character == '%' {
            cleaned.push_str(" percent ");
        } else if character == '&' {
            cleaned.push_str(" and ");
        } else if character == '\'' || character == '’' {
            // "chef's" -> "chefs": apostrophes join, they do not split.
        } else if character.is_alphanumeric() {
            for lower in character.to_lowercase() {
                cleaned.push(fold_accent(lower));
            }
        } else {
            cleaned.push(' ');
        }
    }
    cleaned.split_whitespace().map(str::to_owned).collect()
}

/// The lower-case words of a short message whose numbers matter (a correction, a profile): a
/// letter right after a digit starts a new word ("100g" -> "100 g"), a decimal comma or point
/// between digits is a point, a ' or " right after a digit is feet or inches ("5'11\"" ->
/// "5 ft 11 in"), other apostrophes join ("didn't" -> "didnt"), any other punctuation is a space.
pub(crate) fn message_words(text: &str) -> Vec<String> {
    let characters: Vec<char> = text.chars().collect();
    let mut cleaned = String::with_capacity(text.len() + 8);
    for (index, character) in characters.iter().enumerate() {
        let digit_before = index > 0 && characters[index - 1].is_ascii_digit();
        let digit_after = characters
            .get(index + 1)
            .is_some_and(|next| next.is_ascii_digit());
        match character {
            ',' | '.' if digit_before && digit_after => cleaned.push('.'),
            '\'' | '’' if digit_before => cleaned.push_str(" ft "),
            '"' | '”' if digit_before => cleaned.push_str(" in "),
            '\'' | '’' => {}
            c if c.is_alphanumeric() => {
                if digit_before && c.is_alphabetic() {
                    cleaned.push(' ');
                }
                cleaned.extend(c.to_lowercase());
            }
            _ => cleaned.push(' '),
        }
    }
    cleaned.split_whitespace().map(str::to_owned).collect()
}

/// The words of `text`, normalised and singularised: the form every lookup uses.
#[cfg(test)]
pub(crate) fn normalize_words(text: &str) -> Vec<String> {
    plain_words(text)
        .iter()
        .map(|word| singular(word))
        .collect()
}

/// Folds the accented Latin letters that appear in food names ("jalapeño", "crème", "açaí").
pub(crate) fn fold_accent(character: char) -> char {
    match character {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => 'a',
        'ç' | 'č' | 'ć' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' => 'i',
        'ñ' | 'ń' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' => 'u',
        'ý' | 'ÿ' => 'y',
        'ş' | 'š' | 'ś' => 's',
        'ğ' => 'g',
        'ž' | 'ź' | 'ż' => 'z',
        'ł' => 'l',
        other => other,
    }
}

/// Words whose plural is "-ies" but whose singular ends in "-ie".
const IE_WORDS: &[&str] = &[
    "cookie", "brownie", "smoothie", "veggie", "pie", "hoagie", "calorie", "rotie", "goodie",
    "sweetie", "pastie", "cutie", "birdie", "boxtie",
];

/// Words ending in "s" that are already singular (or that must not be cut).
const KEEP_S_WORDS: &[&str] = &[
    "hummus",
    "couscous",
    "asparagus",
    "citrus",
    "swiss",
    "bass",
    "molasses",
    "grits",
    "oats",
    "lentils",
    "is",
    "was",
    "has",
    "this",
    "us",
    "gas",
    "plus",
    "chips",
    "fries",
    "greens",
    "brussels",
    "nachos",
    "tacos",
    "ms",
    "oz",
    "lbs",
    "tbs",
    "less",
    "glass",
    "floss",
    "series",
    "species",
    "molasses",
    "anchovies",
];

/// A cheap English singular: consistent on both sides of a comparison, which is what matters.
pub(crate) fn singular(word: &str) -> String {
    let irregular = match word {
        "leaves" => Some("leaf"),
        "halves" => Some("half"),
        "loaves" => Some("loaf"),
        "knives" => Some("knife"),
        "potatoes" => Some("potato"),
        "tomatoes" => Some("tomato"),
        "mangoes" => Some("mango"),
        "children" => Some("child"),
        "teeth" => Some("tooth"),
        "mice" => Some("mouse"),
        "geese" => Some("goose"),
        "feet" => Some("foot"),
        "men" => Some("man"),
        "women" => Some("woman"),
        "anchovies" => Some("anchovy"),
        "chips" => Some("chip"),
        "fries" => Some("fry"),
        "greens" => Some("green"),
        "nachos" => Some("nacho"),
        "tacos" => Some("taco"),
        "oats" => Some("oat"),
        "lentils" => Some("lentil"),
        "grits" => Some("grit"),
        _ => None,
    };
    if let Some(singular) = irregular {
        return singular.to_owned();
    }
    if word.len() <= 3 || KEEP_S_WORDS.contains(&word) || !word.is_ascii() {
        return word.to_owned();
    }
    if let Some(stem) = word.strip_suffix("ies") {
        let with_ie = format!("{stem}ie");
        if IE_WORDS.contains(&with_ie.as_str()) {
            return with_ie;
        }
        return format!("{stem}y");
    }
    for ending in ["ches", "shes", "sses", "xes", "zzes"] {
        if word.ends_with(ending) {
            return word[..word.len() - 2].to_owned();
        }
    }
    if let Some(stem) = word.strip_suffix("oes") {
        return format!("{stem}o");
    }
    if word.ends_with("ss") || word.ends_with("us") || word.ends_with("is") {
        return word.to_owned();
    }
    match word.strip_suffix('s') {
        Some(stem) => stem.to_owned(),
        None => word.to_owned(),
    }
}

/// Whether swapping two neighbouring letters ("chiken" / "chikcen") is one edit or two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Swaps {
    /// Optimal string alignment (restricted Damerau-Levenshtein): a swap is one edit.
    OneEdit,
    /// Plain Levenshtein: a swap is two substitutions.
    TwoEdits,
}

/// Damerau-Levenshtein (optimal string alignment) distance, giving up above `limit`: how far a
/// typed word is from a table word.
pub(crate) fn edit_distance_within(left: &str, right: &str, limit: usize) -> Option<usize> {
    bounded_distance(left, right, limit, Swaps::OneEdit)
}

/// Levenshtein distance (a swap counts as two edits), giving up above `limit`: how far apart
/// two food names the vision agents gave are.
pub(crate) fn levenshtein_within(left: &str, right: &str, limit: usize) -> Option<usize> {
    bounded_distance(left, right, limit, Swaps::TwoEdits)
}

/// The edit distance between `left` and `right` in characters, or `None` as soon as it is
/// certain to exceed `limit` (a row of the table whose minimum is above it).
fn bounded_distance(left: &str, right: &str, limit: usize, swaps: Swaps) -> Option<usize> {
    let left: Vec<char> = left.chars().collect();
    let right: Vec<char> = right.chars().collect();
    if left.len().abs_diff(right.len()) > limit {
        return None;
    }
    let width = right.len() + 1;
    let mut previous_previous = vec![0usize; width];
    let mut previous: Vec<usize> = (0..width).collect();
    let mut current = vec![0usize; width];
    for i in 1..=left.len() {
        current[0] = i;
        let mut row_minimum = current[0];
        for j in 1..=right.len() {
            let cost = usize::from(left[i - 1] != right[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if swaps == Swaps::OneEdit
                && i > 1
                && j > 1
                && left[i - 1] == right[j - 2]
                && left[i - 2] == right[j - 1]
            {
                best = best.min(previous_previous[j - 2] + 1);
            }
            current[j] = best;
            row_minimum = row_minimum.min(best);
        }
        if row_minimum > limit {
            return None;
        }
        std::mem::swap(&mut previous_previous, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    let distance = previous[right.len()];
    (distance <= limit).then_some(distance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_and_accents_normalise_to_one_form() {
        assert_eq!(normalize_words("Tomatoes"), vec!["tomato"]);
        assert_eq!(normalize_words("cherries"), vec!["cherry"]);
        assert_eq!(normalize_words("Cookies"), normalize_words("cookie"));
        assert_eq!(
            normalize_words("jalapeño peppers"),
            vec!["jalapeno", "pepper"]
        );
        assert_eq!(normalize_words("2% milk"), vec!["2", "percent", "milk"]);
        assert_eq!(normalize_words("glasses"), vec!["glass"]);
        assert_eq!(normalize_words("hummus"), vec!["hummus"]);
        assert_eq!(normalize_words("spinach (raw)"), vec!["spinach", "raw"]);
        assert_eq!(
            normalize_words("mac & cheese"),
            vec!["mac", "and", "cheese"]
        );
    }

    #[test]
    fn edit_distance_counts_swaps_as_one() {
        assert_eq!(edit_distance_within("chiken", "chicken", 2), Some(1));
        assert_eq!(edit_distance_within("brocolli", "broccoli", 2), Some(2));
        assert_eq!(edit_distance_within("banana", "bnaana", 1), Some(1));
        assert_eq!(edit_distance_within("apple", "orange", 2), None);
        assert_eq!(edit_distance_within("", "", 0), Some(0));
    }

    #[test]
    fn levenshtein_counts_swaps_as_two() {
        assert_eq!(levenshtein_within("chiken", "chicken", 2), Some(1));
        assert_eq!(levenshtein_within("banana", "bnaana", 1), None);
        assert_eq!(levenshtein_within("banana", "bnaana", 2), Some(2));
        assert_eq!(levenshtein_within("tomato", "tomatoes", 1), None);
        assert_eq!(levenshtein_within("", "", 0), Some(0));
    }
}
