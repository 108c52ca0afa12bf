/**
 * Vocabulary of the generated chat: common English chat words weighted by repetition,
 * some German/Spanish/French/Russian words (multi-byte UTF-8) and emoji, so that the
 * message bodies compress like real text (~3:1), not like random bytes or one repeated word.
 */

const COMMON = `the to I you and a it is that of in for me on my be so have do not this
 are was just we at with but what can like ok yes no get go if all your know will out up
 now about how good they one when see too time think then got really there well day
 today tomorrow tonight later home work lol haha thanks thank please sorry love miss
 call back going come here where did dont im its u r would could should need want
 let us our from by been had has were them him her his she he who why because still
 much more some any very also only even after before again great nice cool sure fine
 right yeah yep nope maybe sounds perfect awesome amazing happy birthday morning night
 weekend week month year meeting dinner lunch breakfast coffee beer party train bus car
 late early soon minutes hour hours office school kids mom dad brother sister friend
 friends guys everyone someone something nothing anything everything people place
 house flat room kitchen garden park beach city trip holiday flight hotel ticket
 tickets price money pay paid send sent message photo photos video picture pictures
 look looks looking watch watched movie show game match won lost play playing played
 read book news phone battery charger wifi password laptop email link address map
 left right straight next last first second third new old big small long short
 hot cold rain sunny weather outside inside open closed shop store supermarket milk
 bread eggs cheese pizza pasta chicken salad wine water tea cake chocolate food hungry
 tired sick better feel feeling doctor appointment tomorrow's monday tuesday wednesday
 thursday friday saturday sunday january february march april june july august
 september october november december remember forgot forget bring take give gave make
 made cook cooking cleaning washing shopping driving walking running gym swim run
 walk drive pick drop meet meet-up ready leave leaving arrived arrive coming wait
 waiting minute quick quickly slowly almost already yet ever never always often
 usually sometimes probably definitely exactly actually honestly seriously basically
 literally totally crazy funny weird strange interesting boring busy free available
 plan plans idea ideas question answer problem fixed fix broken works working help
 idk btw omg tbh imo brb ttyl np thx pls xx xoxo ❤️ 😂 👍 🙏 😊 😅 🎉 😍 🤔 😭 🔥 👌 🙈 💪 😘`;

const FOREIGN = `hallo danke bitte genau morgen schön grüße tschüss später natürlich
 hola gracias mañana señor niño qué también así por favor después
 bonjour merci très déjà où ça été à bientôt voilà
 привет спасибо хорошо завтра да нет пока как дела
 こんにちは ありがとう 大丈夫 今日 明日`;

/** Words, most frequent first (the generator favours the head of the list). */
export const WORDS: readonly string[] = COMMON.split(/\s+/).filter((w) => w.length > 0);

/** Less common words mixed in at a low rate. */
export const FOREIGN_WORDS: readonly string[] = FOREIGN.split(/\s+/).filter((w) => w.length > 0);

/** First names for contacts. */
export const NAMES: readonly string[] = `Anna Ben Carla David Emma Felix Greta Hugo Ines Jonas
 Klara Leon Mia Noah Olivia Paul Quinn Rosa Sam Tara Umut Vera Wim Xenia Yusuf Zoe Ahmed
 Bea Chen Dmitri Elif Farah Giulia Hana Ivan José Kenji Lena Marta Nils Omar Priya Raúl
 Sofia Tomás Ulla Valentina Yuki Zainab Ólafur Søren Chloé Björn Łukasz`
  .split(/\s+/)
  .filter((w) => w.length > 0);

/** Group chat subjects. */
export const SUBJECTS: readonly string[] = [
  'Family',
  'Flatmates',
  'Football Sunday',
  'Book club',
  'Work — team',
  'Climbing crew',
  'Holiday 2024 🏖️',
  'Parents class 3b',
  'Neighbours',
  'Birthday surprise 🎉',
  'Band practice',
  'Uni friends',
];
