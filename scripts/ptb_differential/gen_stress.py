"""Seeded generator of stress strings for the PTB tokenizer differential test.

Writes one string per line (UTF-8, no line terminators inside a string) to the file given as argv[1]:
`count` generated strings drawn from the classes of text where a PTB tokenizer reimplementation can go
wrong (control characters, untokenizable characters, HTML entities and tags, URLs, e-mail, emoticons,
quotes, apostrophes, abbreviations, numbers, currency, hyphens, fractions, no-break spaces, line-final
initials whose result depends on the next line, ...), each a composition of snippets inside caption-like
text, so the classes also meet each other. Usage:

    python3 gen_stress.py OUT [--seed N] [--count N] [--terminators OUT2]

With --terminators, also writes strings that contain the line terminators pycocoevalcap cannot handle
(\\r \\v \\f U+2028 U+2029, which the Java tool treats as line breaks); the test compares our output on
them with Java's output on the same string with each terminator replaced by a space.

Standard library only. Our own code: the classes come from the issue and from probing the Java tool.
"""
import random
import sys

WORDS = ("a man woman dog cat two three people sitting on the of with in table street bus train pizza plate "
         "standing near white black red small large group is are next to an at holding riding field water "
         "kitchen room bed horse sign food person tennis player skateboard giraffe elephant clock tower "
         "Street Park New York John Mary London The A Two Man Dog I It This").split()
CAPWORDS = "The A He She It They John Mary New London Two This There An".split()

C0 = [chr(c) for c in range(1, 32) if c not in (9, 10, 11, 12, 13)]
C1 = [chr(c) for c in range(0x80, 0xA0)]
UNTOKENIZABLE = list("【】‒―₹₽₩₴₦₪₫\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                     "\u200b\u200c\u200d\u2060\ufeff\ufe0f\ufe0e\u00ad\ufffd")
SPACES = [" ", "  ", "\t", "\u00a0", "\u2002", "\u2003", "\u2009", "\u3000", "\u202f", "\u205f", "\u1680"]
ENTITIES = ["&gt;", "&lt;", "&amp;", "&quot;", "&apos;", "&nbsp;", "&#39;", "&#x27;", "&#8217;", "&#65;",
            "&#x41;", "&mdash;", "&ndash;", "&hellip;", "&eacute;", "&foo;", "&AMP;", "&Gt;", "&LT;", "&amp",
            "&gt", "&#39", "&;", "&#;", "&copy;", "&reg;", "&trade;", "&lsquo;", "&rsquo;", "&ldquo;",
            "&rdquo;", "&laquo;", "&raquo;", "&cent;", "&pound;", "&euro;", "&frac12;", "&#160;", "&#x2019;"]
AMP = ["AT&T", "a&b", "A&b", "Q&A", "R&D", "b&w", "B&W", "x & y", "&x", "x&", "&", "&&", "a&&b", "P&G",
       "rock&roll", "M&Ms", "1&2", "a&1", "H&M's", "AT&T's", "S&P500", "A&E.", "Johnson&Johnson"]
TAGS = ["<b>", "</b>", "<br/>", "<br />", "<br>", "<a href=\"x\">", "<a href='http://x.com/y'>", "</a>",
        "<!-- c -->", "<!--comment-->", "<!-- a b -->", "<p class=\"x y\">", "</p>", "<x", "a<b", "a>b", "<>",
        "<1>", "<img src=\"a.jpg\" />", "<DIV>", "</DIV >", "< b >", "<i>x</i>", "<span id=a>", "<?xml?>",
        "<!DOCTYPE html>", "<-", "->", "<<", ">>", "<=", ">=", "<3"]
URLS = ["http://www.example.com", "https://www.x.com/p?q=1&r=2#frag", "www.foo.org", "foo.com", "a@b.com",
        "user.name+tag@ex.co.uk", "localhost:8080", "192.168.0.1:80", "ftp://files.x.org/a_b.txt",
        "mailto:x@y.z", "http://x.com/a(b)", "example.com/path", "http://t.co/AbC123", "https://a.b/c.d?e=f.",
        "www.google.com.", "x.y.z", "file.jpg", "image.png", "bit.ly/2xYz", "HTTP://WWW.X.COM", "host:22",
        "news.bbc.co.uk:443/x", "john@doe", "@home", "a@b", "me@127.0.0.1", "http://", "www.", "https://x"]
EMOTICONS = [":)", ":(", ":D", ":O", ":o", ":P", ":p", ";)", ":-)", ":-(", ":))", ":((", ":-D", ":'(", ":/",
             ":\\", "=)", "XD", "xD", "<3", "</3", "^_^", "o_O", "O_o", ":-|", ":|", ":*", ";-)", ":]", ":[",
             "8)", "B)", ":-P", ":-O", ">:(", ":-))", ":)))", "(:", "):", ":@", ":$", ":3", "=D", ":0",
             ":')", ";D", ":-/", "D:", "*_*", "-_-", "T_T"]
QUOTES = ["«", "»", "‹", "›", "„", "‚", "\"", "'", "`", "``", "''", "“", "”", "‘", "’", "‛", "‟", "〝", "〞",
          "＂", "«x»", "„x“", "‚x‘", "\"x\"", "'x'", "`x'", "``x''", "« x »", "‹x›", "“x”", "‘x’", "'''",
          "\"\"", "''x''", "'\"", "\"'"]
APOS = ["ca n't", "wo n't", "ca", "n't", "'Twas", "'twas", "'Tis", "'tis", "y'all", "Y'all", "o'clock",
        "ma'am", "rock'n'roll", "rock 'n' roll", "'90s", "'em", "cats'", "don't", "DON'T", "Don't", "I'm",
        "he'll", "can't", "CAN'T", "shouldn't've", "d'Artagnan", "O'Neil", "l'homme", "it's", "It's", "IT'S",
        "we're", "they've", "I'd", "'s", "'re", "n't", "'ll", "'d", "'m", "'ve", "won't", "ain't", "let's",
        "y'know", "'cause", "'n'", "goin'", "nothin'", "dogs'", "James'", "ol'", "'round", "'til", "'bout",
        "don’t", "it’s", "‘Twas", "y’all", "o’clock", "can’t", "isn’t", "'", "''", "a'b", "x'y'z",
        "'a", "a'", "'5", "5'", "5'10\"", "6'", "the '80s", "'80s", "80's", "1980's", "A's", "B's", "cannot",
        "Cannot", "gonna", "Gonna", "gotta", "wanna", "gimme", "lemme", "Lemme", "dunno", "'tain't", "more'n",
        "'Twasn't", "c'mon", "C'mon", "whaddya", "D'ye", "wouldn't", "hadn't"]
ABBREV = ["al.", "cf.", "est.", "Mlle.", "Mr.", "Mrs.", "Ms.", "Dr.", "St.", "etc.", "e.g.", "i.e.", "a.m.",
          "p.m.", "U.S.", "U.S.A.", "u.s.", "No.", "no.", "Jan.", "Inc.", "Co.", "Ltd.", "Jr.", "vs.", "Ave.",
          "Mt.", "Prof.", "Gen.", "Sen.", "Rep.", "Corp.", "Bros.", "Calif.", "Mass.", "Wash.", "Pa.", "Ph.D.",
          "A.", "B.", "J.", "L.", "x.", "e.", "Z.", "Mme.", "Messrs.", "Sept.", "Oct.", "Dec.", "Mon.", "Fri.",
          "approx.", "dept.", "fig.", "Fig.", "vol.", "pp.", "ed.", "eds.", "op.", "ca.", "viz.", "Blvd.",
          "Rd.", "Sq.", "Esq.", "Univ.", "Gov.", "Capt.", "Lt.", "Sgt.", "Col.", "Maj.", "Adm.", "Ft.",
          "T.V.", "D.C.", "N.Y.", "L.A.", "U.K.", "E.U.", "a.", "b.c.", "A.B.C.D.", "ie.", "eg.", "etc", "Inc",
          "Mr", "Dr", "Mx.", "Sr.", "Ky.", "Ill.", "ill.", "mass.", "wash."]
PERIOD_PUNCT = [".)", ".,", ".\"", ".'", ".!", ".?", "..", ".:", ".;", ".-", ".--", ".]", ".}", ".>", ".*",
                "./", ".%", ".$", ".#", ".“", ".”", ".’", "…", "...", "....", ". . .", ". .", ".'\"", ".\")",
                ".)\"", "!.", "?.", "!!", "?!", "!?", "???", "!!!", ".!?", "..?", ":.", ";.", ",.", "-."]
NUMBERS = ["$-5next", "$.99", "5km", "3.5x", "1,000", "10:30pm", "5th", "1/2", "22/7", "-5", "+5", "5%",
           "5-10", "1.2.3", "5.", ".5", "3½", "6ft", "$5", "$5.00", "$ 5", "5$", "100,000.00", "1,2", "1.000,5",
           "3:45", "3:45:12", "12:00am", "2x", "4K", "1080p", "10-year-old", "3D", "2nd", "1st", "-.5", "+.5",
           "5-", "-5-", "5/", "/5", "5/10/2020", "2020-01-01", "1e5", "0x1F", "#1", "No.1", "5.5.", "5..5",
           "5,", ",5", "5,000,", "50%.", "$50.", "5:", ":5", "007", "3.14159", "½", "1½", "-1.5%", "$-.5",
           "5-5-5", "(555) 123-4567", "555-1234", "1-800-FLOWERS", "5.0x", "v1.2", "v2", "x86", "mp3", "4x4",
           "10x", "11:59:59.9", "1.5m", "2.5cm", "100s", "1990s", "'90s", "5'", "5\"", "5''", "9/11",
           "24/7", "3-4", "1:1", "16:9", "4:3", "-", "--", "---", "5--6", "5—6", "5–6", "1.", "12.", "A1",
           "B-52", "F-16", "COVID-19", "H2O", "CO2", "pH7.5", "$1.5bn", "€5", "£5", "¥5", "5€", "5¢", "¢5"]
SYMWORDS = ["hash#tag", "@mention", "#tag", "under_score", "a_b_c", "__init__", "x@y", "#1", "C#", "F#",
            "#", "@", "_", "##", "@@", "__", "#a#b", "a#", "a@", "a_", "_a", "@a", "#a", "a#1", "a@1", "a_1",
            "#hashtag's", "@user's", "snake_case_name", "A_B", "x#y#z", "foo@bar@baz", "@@x", "##x", "_x_"]
LRB = ["-LRB-", "-RRB-", "-LCB-", "-RCB-", "-LSB-", "-RSB-", "-lrb-", "-rrb-", "-LCB-x", "x-LRB-", "( -LRB- )",
       "-LRB-x-RRB-", "-LRB", "LRB-", "-Lrb-", "(x)", "[x]", "{x}", "()", "[]", "{}", "((", "))", "(5)",
       "(a)", "f(x)", "a(b)c", "x)", "(x", ":(", "):"]
CURRENCY = ["NZ$", "US$5", "A$", "C$10", "HK$", "S$", "NZ$10", "US$", "R$5", "costs$5", "M$", "$US",
            "AU$5", "CA$", "$", "$$", "$$$", "5$$", "US$ 5", "a$b", "a$", "$a", "£", "€", "¥", "₤", "¢", "₹",
            "USD$5", "Z$", "z$5", "us$5", "NZD", "EUR€", "$5m", "$5bn", "$5-a-day"]
QMARK = ["a?b", "a!b", "a?!", "?!", "wh?t", "a?", "?a", "a??b", "a?.b", "what?!", "?", "!", "a!", "!a",
         "a!?b", "x?y?z", "Who?", "why??", "a.?", "a?)", "(a?)", "a?\"", "\"a?\""]
HYPHENS = ["a\u2010b", "a\u2011b", "\u2010", "\u2011", "a\u2010", "\u2010a", "a\u2010\u2010b",
           "well\u2010known", "x\u2011ray", "5\u201010", "a\u2010b\u2010c", "a - b", "a-b", "a--b", "a---b",
           "a‒b", "a–b", "a—b", "a―b", "a‐ b", "a -b", "-a", "a-", "a-b-c", "e-mail", "re-do", "x-\u2010y",
           "a\u2012b", "a\u2043b", "a\u2212b", "a\ufe63b", "a\uff0db", "a\u058ab", "a\u00adb", "a\u1806b"]
FRACS = ["⅓", "⅔", "¼", "½", "¾", "⅛", "⅜", "⅝", "⅞", "⅕", "⅖", "⅙", "⅚", "⅐", "⅑", "⅒", "↉", "²", "³",
         "¹", "⁴", "⁰", "₁", "₂", "x²", "m³", "3½", "1⅓", "⅓cup", "a⅓b", "10¹", "H₂O", "CO₂", "²x", "5⁄8",
         "1⁄2", "x⁄y", "Ⅻ", "ⅷ", "①", "⑳", "㉑", "٣", "٫", "۵", "५", "๕", "５", "ⅹ", "x½", "½x", "½.", "⅓%"]
NBSP = ["a\u00a0b", "5\u00a0000", "555\u00a01234", "Mr.\u00a0Smith", "<a\u00a0href=x>", "\u00a0", "a\u00a0",
        "\u00a0a", "a\u00a0\u00a0b", "1\u00a0/\u00a02", "$\u00a05", "5\u00a0%", "a\u202fb", "a\u2007b",
        "(555)\u00a0123", "1\u00a02", "12\u00a0345\u00a0678", "x\u00a0.", ":\u00a0)", "<!--\u00a0x\u00a0-->",
        "555 1234", "555-1234", "(555) 555-5555", "+1 555 1234", "1 2", "12 345", "1 1/2", "2 3/4"]
PUNCT = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + ["...", "--", "**", "***", "~~", "||", "\\\\", "//",
                                                         "==", "=>", "+=", "^^", "%%", "&&", ",,", ";;", "::"]
MISC = ["×", "÷", "°", "±", "§", "¶", "©", "®", "™", "•", "·", "†", "‡", "※", "→", "←", "↑", "★", "☆", "♥",
        "♪", "✓", "✔", "€", "∞", "≈", "≠", "≤", "√", "∑", "µ", "Ω", "ß", "æ", "ø", "ł", "đ", "ﬁ", "ﬂ", "Ǆ",
        "İ", "ı", "ǅ", "ẞ", "ŉ", "ΐ", "한국어", "日本語", "中文", "العربية", "עברית", "ไทย", "हिन्दी", "Ελληνικά",
        "Русский", "café", "naïve", "résumé", "cafe\u0301", "n\u0303", "a\u0308", "e\u20dd", "İstanbul",
        "ǈ", "Σ", "ς", "ﬀ", "Ⓐ", "ⓐ", "ℌ", "ℵ", "ﷺ", "ﻼ", "ヲ", "ｱ", "ｶﾞ", "〃", "々", "ー", "・", "。", "、",
        "，", "．", "！", "？", "：", "；", "（", "）", "［", "］", "｛", "｝", "〈", "〉", "《", "》", "「", "」",
        "『", "』", "〔", "〕", "♂", "♀", "☺", "☹", "😀", "👍🏽", "🇺🇸", "𝐀", "𠀀", "\U0001f600x", "x\U0001f600"]

BASE_CLASSES = ["c0", "c1", "fffd", "untok", "entity", "amp", "tag", "url", "emoticon", "quote", "apos",
                "abbrev", "period", "number", "symword", "lrb", "currency", "qmark", "hyphen", "frac", "nbsp",
                "punct", "misc", "randchar", "space"]


def snippet(r, cls):
    if cls == "c0":
        return r.choice(C0)
    if cls == "c1":
        return r.choice(C1)
    if cls == "fffd":
        return "\ufffd" * r.choice([1, 1, 2, 3])
    if cls == "untok":
        return r.choice(UNTOKENIZABLE)
    if cls == "entity":
        return r.choice(ENTITIES)
    if cls == "amp":
        return r.choice(AMP)
    if cls == "tag":
        return r.choice(TAGS)
    if cls == "url":
        return r.choice(URLS)
    if cls == "emoticon":
        return r.choice(EMOTICONS)
    if cls == "quote":
        return r.choice(QUOTES)
    if cls == "apos":
        return r.choice(APOS)
    if cls == "abbrev":
        return r.choice(ABBREV)
    if cls == "period":
        return r.choice(WORDS) + r.choice(PERIOD_PUNCT)
    if cls == "number":
        return r.choice(NUMBERS)
    if cls == "symword":
        return r.choice(SYMWORDS)
    if cls == "lrb":
        return r.choice(LRB)
    if cls == "currency":
        return r.choice(CURRENCY)
    if cls == "qmark":
        return r.choice(QMARK)
    if cls == "hyphen":
        return r.choice(HYPHENS)
    if cls == "frac":
        return r.choice(FRACS)
    if cls == "nbsp":
        return r.choice(NBSP)
    if cls == "punct":
        return "".join(r.choice(PUNCT) for _ in range(r.choice([1, 1, 2, 3])))
    if cls == "misc":
        return r.choice(MISC)
    if cls == "randchar":
        # any BMP character that is not a surrogate or a line terminator
        while True:
            c = r.randrange(1, 0x10000)
            if not (0xD800 <= c < 0xE000) and c not in (10, 11, 12, 13, 0x2028, 0x2029):
                return chr(c)
    if cls == "space":
        return r.choice(SPACES)
    raise ValueError(cls)


def sentence(r, n_words):
    return [r.choice(WORDS) for _ in range(n_words)]


def compose(r):
    """One stress string: caption-like words with snippets inserted between words, glued to words or
    inside a word; sometimes a bare snippet or a soup of snippets."""
    shape = r.random()
    if shape < 0.06:
        return snippet(r, r.choice(BASE_CLASSES))
    if shape < 0.14:
        return "".join(snippet(r, r.choice(BASE_CLASSES)) for _ in range(r.randint(2, 5)))
    words = sentence(r, r.randint(1, 9))
    if r.random() < 0.5:
        words[0] = words[0].capitalize()
    for _ in range(r.choice([1, 1, 1, 2, 2, 3, 4])):
        s = snippet(r, r.choice(BASE_CLASSES))
        k = r.randrange(len(words) + 1)
        how = r.random()
        if how < 0.5 or k == len(words):
            words.insert(k, s)
        elif how < 0.7:
            words[k] = words[k] + s  # glued after
        elif how < 0.85:
            words[k] = s + words[k]  # glued before
        else:
            w = words[k]
            cut = r.randrange(len(w) + 1)
            words[k] = w[:cut] + s + w[cut:]  # inside
    end = r.random()
    text = " ".join(words)
    if end < 0.4:
        text += "."
    elif end < 0.5:
        text += " ."
    elif end < 0.6:
        text += r.choice(["!", "?", "...", " ?", "\"", ".\"", "'", ")", ".)", ":", ";", ",", "-", "--"])
    if r.random() < 0.05:
        text = " " + text
    if r.random() < 0.05:
        text = text + r.choice(SPACES)
    return text


def context_pair(r):
    """A line ending in an initial or abbreviation, and the line after it (whose first character decides
    Java's result for the first line)."""
    first = " ".join(sentence(r, r.randint(0, 4)) + [r.choice(ABBREV)])
    starts = ["The man", "the man", "5 men", "\"Hi\"", "'Tis", "(a)", "É", "A", "a", "", " The", "  the",
              "\tThe", "\u00a0The", "Inc.", "J. Smith", "-", "...", "$5", "#1", "@x", "_x", "\ufffdThe",
              "\u0001The", "\u200bThe", "【The", "<b>The", "&gt;", "Ñ", "ÉCOLE", "Ö", "ÿ", "1", "?"]
    return [first, r.choice(starts) + (" " + " ".join(sentence(r, r.randint(0, 3))) if r.random() < 0.5 else "")]


TERMINATORS = ["\r", "\x0b", "\x0c", "\u2028", "\u2029"]


def main():
    args = sys.argv[1:]
    out = args[0]
    seed = 12
    count = 20000
    term_out = None
    k = 1
    while k < len(args):
        if args[k] == "--seed":
            seed = int(args[k + 1])
        elif args[k] == "--count":
            count = int(args[k + 1])
        elif args[k] == "--terminators":
            term_out = args[k + 1]
        else:
            sys.exit(f"gen_stress.py: unknown argument {args[k]!r}")
        k += 2
    r = random.Random(seed)
    lines = []
    while len(lines) < count:
        if r.random() < 0.08:
            lines.extend(context_pair(r))
        else:
            lines.append(compose(r))
    lines = lines[:count]
    bad = [s for s in lines if any(t in s for t in ("\n", "\r", "\x0b", "\x0c", "\u2028", "\u2029"))]
    assert not bad, bad[:3]
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines))
    if term_out:
        tl = []
        for _ in range(500):
            s = compose(r)
            for _ in range(r.randint(1, 3)):
                cut = r.randrange(len(s) + 1)
                s = s[:cut] + r.choice(TERMINATORS) + s[cut:]
            tl.append(s)
        with open(term_out, "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(tl))


if __name__ == "__main__":
    main()
