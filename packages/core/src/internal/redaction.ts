/**
 * A token this long or longer is replaced wherever it occurs, even inside other text (`req_<token>`): nothing but the
 * token itself holds it by chance. Intercom's access tokens are 60 characters.
 */
const ANYWHERE_MIN_LENGTH = 8

/** A letter or digit next to a short token makes it part of a word, not the token. */
const WORD_CHARACTER = "[\\p{L}\\p{N}]"

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/**
 * Replaces `token` with `<redacted>` in text that came from elsewhere: a server's error code, message or request id, a
 * body it echoed, a transport's message. Not to our own words, which a short token could only damage, except where a
 * message of ours quotes a value the token may have been pasted into (`withoutToken`).
 *
 * A token of 8 characters or more is replaced wherever it occurs. A shorter one (no real Intercom token is) is
 * replaced only where it stands alone, with no letter or digit on either side: inside a word it cannot be told from
 * the word (`T` in `Transport`), and replacing it there would wreck the text without hiding anything.
 */
export const redactor = (token: string): (text: string) => string => {
  if (token === "") return (text) => text
  if (token.length >= ANYWHERE_MIN_LENGTH) return (text) => text.split(token).join("<redacted>")
  const alone = new RegExp(`(?<!${WORD_CHARACTER})${escapeRegExp(token)}(?!${WORD_CHARACTER})`, "gu")
  return (text) => text.replace(alone, "<redacted>")
}

/**
 * `text` from a server with its control characters (C0, DEL, C1: ESC and the terminal sequences it starts, CR, LF, BEL)
 * and the bidirectional controls (overrides, embeddings, isolates and the marks that reorder neutral characters)
 * written as escapes (`\u001b`), so that a server's words printed on a terminal or into a log line cannot clear the
 * screen, retitle the window, plant a hyperlink, reorder what is around them or fake a line of their own.
 */
export const printable = (text: string): string =>
  text.replace(
    // eslint-disable-next-line no-control-regex -- the control characters are what is escaped
    /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
  )
