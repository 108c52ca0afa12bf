/**
 * A new password, typed twice, with the rules shown and a strength meter. Judged in the page
 * with the CLI's own function (`src/client/password-strength.ts`: the SDK's rules, then
 * zxcvbn): a very common password is refused, a weak one needs a tick. The password never
 * leaves the page except as OPAQUE messages.
 */
import { judgePassword, type PasswordJudgement } from 'backvault/password-strength';
import { MIN_PASSWORD_LENGTH } from 'backvault/client';
import { errorView } from './api.js';
import { h, replace, uid } from './dom.js';

const WORDS = ['Too easy to guess', 'Weak', 'Fair', 'Good', 'Strong'];

/**
 * Renders the form; `onSubmit` gets the password once both entries match and it passes.
 * Errors thrown by `onSubmit` are shown under the form.
 */
export function newPasswordForm(opts: {
  submitLabel: string;
  /** Words an attacker knows (the account name). */
  userInputs: readonly string[];
  onSubmit(password: string): Promise<void>;
}): HTMLFormElement {
  const a = uid('pw');
  const b = uid('pw');
  const rulesId = uid('rules');
  const first = h('input', {
    type: 'password',
    id: a,
    autocomplete: 'new-password',
    'aria-describedby': `${rulesId} ${a}-meter-text`,
  });
  const second = h('input', { type: 'password', id: b, autocomplete: 'new-password' });
  const meter = h(
    'div',
    { class: 'meter', 'data-score': '0', 'aria-hidden': 'true' },
    h('span'),
    h('span'),
    h('span'),
    h('span'),
  );
  const meterText = h('p', { class: 'hint', id: `${a}-meter-text`, 'aria-live': 'polite' });
  const weakId = uid('weak');
  const weakBox = h('input', { type: 'checkbox', id: weakId });
  const weakRow = h(
    'div',
    { hidden: true },
    h('label', { for: weakId }, weakBox, ' Use this weak password anyway'),
  );
  const out = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'submit' }, opts.submitLabel);
  // The last verdict: the judgement, or why there is none (the rules, or the meter failed).
  let last: { pw: string; j?: PasswordJudgement; error?: unknown } = { pw: '\u0000' };
  let seq = 0;

  async function judge(pw: string): Promise<{ j?: PasswordJudgement; error?: unknown }> {
    if (last.pw !== pw) {
      try {
        last = { pw, j: await judgePassword(pw, opts.userInputs) };
      } catch (error) {
        last = { pw, error };
      }
    }
    return last;
  }

  first.addEventListener('input', () => {
    const mine = ++seq;
    const pw = first.value;
    if (pw === '') {
      meter.dataset.score = '0';
      meterText.textContent = '';
      return;
    }
    void judge(pw).then(({ j }) => {
      if (mine !== seq) return;
      meter.dataset.score = String(j ? Math.max(1, j.score) : 0);
      meterText.textContent = j
        ? `Strength: ${WORDS[j.score] ?? ''}.`
        : `Strength: does not follow the rules yet.`;
      weakRow.hidden = !(j && j.verdict === 'weak');
    });
  });

  const form = h(
    'form',
    {
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        const pw = first.value;
        void (async () => {
          replace(out);
          const { j, error } = await judge(pw);
          // No verdict (the rules are broken, or the meter could not run): never go on.
          if (!j) {
            replace(out, errorView(error));
            first.focus();
            return;
          } else if (j.verdict === 'refused') {
            replace(
              out,
              errorView({
                code: 'WEAK_PASSWORD',
                message:
                  'this password is among the most common ones: anyone guessing tries it first',
                hint: 'Choose another: a few unrelated words work well.',
              }),
            );
            first.focus();
            return;
          } else if (j.verdict === 'weak' && !weakBox.checked) {
            weakRow.hidden = false;
            replace(
              out,
              errorView({
                code: 'WEAK_PASSWORD',
                message: 'this password is weak: it is among the first hundred million guesses',
                hint: 'Choose a longer one (a few unrelated words), or tick "Use this weak password anyway".',
              }),
            );
            return;
          }
          if (second.value !== pw) {
            replace(
              out,
              errorView({
                code: 'USAGE',
                message: 'the two passwords differ; nothing was changed',
              }),
            );
            second.focus();
            return;
          }
          button.disabled = true;
          button.textContent = 'Working…';
          try {
            await opts.onSubmit(pw);
          } catch (e) {
            replace(out, errorView(e));
          } finally {
            button.disabled = false;
            button.textContent = opts.submitLabel;
          }
        })();
      },
    },
    h('label', { for: a }, 'New password'),
    h(
      'ul',
      { class: 'rules', id: rulesId },
      h('li', {}, `At least ${MIN_PASSWORD_LENGTH} characters, with at least one letter.`),
      h('li', {}, 'Not one of the most common passwords; a few unrelated words work well.'),
      h('li', {}, 'After too many wrong tries the vault destroys the key for good.'),
    ),
    first,
    meter,
    meterText,
    weakRow,
    h('label', { for: b }, 'Type it again'),
    second,
    out,
    h('div', { class: 'row' }, button),
  );
  return form;
}
