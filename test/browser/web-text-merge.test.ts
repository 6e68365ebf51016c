/**
 * The web app in Chromium: two people replace the same text at the same
 * time, one of them offline.
 *
 * - A title (one line): after the reconnect both see one whole title — the
 *   later change — never the two glued together; the history card shows
 *   both versions, and "Use this version" brings the other one back for
 *   everyone. Typing into that title later is kept when someone else
 *   writes meanwhile (the settled value is not written over it), and a third
 *   person typing into the title while the collision is settled keeps every
 *   letter; two people typing into a title live, one right after the
 *   other's words, both keep every word with no card; back online while
 *   still typing in a title he changed offline, the later title shows whole
 *   on both screens while he types on.
 * - A description replaced by both: the text holds both versions whole, one
 *   after the other (the earlier first) — never their characters mixed; the
 *   card offers each writer's version and "Keep both", and "Use this
 *   version" leaves that one alone on both screens, also after a reload.
 * - Two people typing into different parts of a description live get no
 *   card at all. Letters typed onto a word the other replaced ("done" made
 *   "undone" while "done" became "finished"), or digits both typed at the
 *   end of one number, are the same part: both lines and the card, not
 *   "unfinished" or "1050k".
 *
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { describe, expect, it } from 'vitest'
import type { BrowserContext, Page } from 'playwright-core'
import { chromiumAvailable } from './support/browserPage.mjs'
import { createTicket, pendingShown, screenshot, signIn, useWebApp } from './webApp.js'

/** Puts the caret of a page's title after its first `n` characters. */
const titleCaret = (page: Page, n: number): Promise<void> =>
  page.locator('#f-title').evaluate((input, at) => (input as HTMLInputElement).setSelectionRange(at, at), n)

/** Two people type keystroke by keystroke, in turns, each seeing the other's keystrokes live. */
const typeInTurns = async (first: Page, firsts: string, second: Page, seconds: string): Promise<void> => {
  for (let i = 0; i < Math.max(firsts.length, seconds.length); i++) {
    if (i < firsts.length) await first.keyboard.type(firsts[i]!)
    if (i < seconds.length) await second.keyboard.type(seconds[i]!)
  }
}

const available = chromiumAvailable()
if (!available)
  console.warn('test/browser: skipping the web-app text merge tests — /usr/bin/chromium is missing (apt-get install chromium)')

/** Replaces the whole text of a field the way a person does: click, select all, type, leave the field. */
const replaceText = async (page: Page, selector: string, text: string): Promise<void> => {
  await page.locator(selector).click()
  await page.keyboard.press('ControlOrMeta+A')
  await page.keyboard.type(text)
  await page.keyboard.press('Tab') // leaving the field ends the typing burst: its history entry is written now
}

/** Types `text` at the end of a page's title and leaves the field. */
const addToTitle = async (page: Page, text: string): Promise<void> => {
  await page.locator('#f-title').click()
  await page.keyboard.press('End')
  await page.keyboard.type(text)
  await page.keyboard.press('Tab')
}

/** Selects a description's first or last line and types `text` over it, then leaves the field. */
const retypeLine = async (page: Page, line: 'first' | 'last', text: string): Promise<void> => {
  await page.locator('#f-description').click()
  await page.keyboard.press(line === 'first' ? 'ControlOrMeta+Home' : 'ControlOrMeta+End')
  await page.keyboard.press(line === 'first' ? 'Shift+End' : 'Shift+Home')
  await page.keyboard.type(text)
  await page.keyboard.press('Tab')
}

describe.skipIf(!available)('web app: concurrent edits of text fields in Chromium', () => {
  const web = useWebApp()
  const context = web.context

  /** Ada and Bob signed in to `workspace`; Ada creates a ticket titled `title`, and Bob opens it once it is stored. */
  const bothOnATicket = async (workspace: string, title: string, bobViewport?: { width: number; height: number }) => {
    const adaContext = await context()
    const bobContext = await context(bobViewport)
    const [ada, bob] = await Promise.all([
      signIn(adaContext, web.relay().url, 'Ada Lovelace', workspace),
      signIn(bobContext, web.relay().url, 'Bob Stone', workspace),
    ])
    const id = await createTicket(ada, title)
    await ada.keyboard.press('Tab')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await bob.goto(`${web.relay().url}#/t/${id}`)
    await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe(title)
    return { ada, bob, bobContext, id }
  }

  /**
   * Bob goes offline and makes his edits; then Ada, online, makes hers (the later change), and once they are stored
   * Bob's connection returns (`beforeReconnect` runs just before) and his edits are stored too.
   */
  const bobOfflineThenAda = async (
    { ada, bob, bobContext }: { ada: Page; bob: Page; bobContext: BrowserContext },
    bobs: () => Promise<void>,
    adas: () => Promise<void>,
    beforeReconnect?: () => Promise<void>,
  ) => {
    await bobContext.setOffline(true)
    await bob.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await bobs()
    await adas()
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    if (beforeReconnect) await beforeReconnect()
    await bobContext.setOffline(false)
    await expect.poll(() => pendingShown(bob), { timeout: 20_000 }).toBe(0)
  }

  /**
   * Ada creates a ticket; Bob, offline, and then Ada replace its title (Ada's is the later change); Bob reconnects.
   * `beforeReconnect` runs once Ada's change is stored, just before Bob's connection returns.
   */
  const collideTitles = async (workspace: string, beforeReconnect?: (id: string) => Promise<void>) => {
    const { ada, bob, bobContext, id } = await bothOnATicket(workspace, 'Login broken')
    await bobOfflineThenAda(
      { ada, bob, bobContext },
      () => replaceText(bob, '#f-title', 'Signup fails on Safari'),
      () => replaceText(ada, '#f-title', 'Checkout times out'), // the later change
      () => (beforeReconnect ? beforeReconnect(id) : Promise.resolve()),
    )
    return { ada, bob }
  }

  it('a title replaced by both, one offline, ends as one whole title; the other version is one click away', async () => {
    const { ada, bob } = await collideTitles('titles')

    // Both see one whole title, the later one: never a mix of the two.
    for (const page of [ada, bob]) {
      await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe('Checkout times out')
      const card = page.getByTestId('text-merge').first()
      await card.waitFor({ timeout: 15_000 })
      const text = await card.innerText()
      expect(text).toContain('Title was changed by two people at once')
      expect(text).toContain('Signup fails on Safari')
      expect(text).toContain('Checkout times out')
      expect(text).toMatch(/Kept the later change/)
      // The settlement is the app's, written on one of the devices: no one is said to have chosen it.
      await expect
        .poll(() => page.getByTestId('history').innerText(), { timeout: 10_000 })
        .toMatch(
          /Merged automatically\s*title settled on the later change, on (Ada Lovelace|Bob Stone)'s (device|and (Ada Lovelace|Bob Stone)'s devices)/,
        )
    }
    await screenshot(bob, 'web-text-merge-title-settled')
    // Bob's account of what happened while he was away says his title was replaced, and offers it back (before: only
    // "Title edited — Ada Lovelace").
    await bob.goto(`${web.relay().url}#/`)
    await expect
      .poll(() => bob.getByTestId('digest-merge').first().innerText(), { timeout: 10_000 })
      .toMatch(/Your title\s+.?Signup fails on Safari.?\s+— Ada Lovelace set .?Checkout times out/)
    await bob.goBack()

    // Bob takes his version: a normal change, for everyone, in the history.
    await bob
      .getByTestId('text-merge')
      .first()
      .getByRole('button', { name: /Use .* version of the title/ })
      .click()
    for (const page of [ada, bob]) {
      await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe('Signup fails on Safari')
    }
    await expect
      .poll(() => ada.getByTestId('history').innerText(), { timeout: 10_000 })
      .toContain('chose a version of title: “Signup fails on Safari”')
    await expect.poll(() => ada.getByTestId('text-merge').first().innerText(), { timeout: 10_000 }).toMatch(/chose .* version/)
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)
    await screenshot(ada, 'web-text-merge-title-chosen')
    // A reload shows the same.
    await ada.reload()
    await expect.poll(() => ada.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe('Signup fails on Safari')
  }, 120_000)

  it('typing into a title whose collision was settled is kept when someone else writes meanwhile', async () => {
    const { ada, bob } = await collideTitles('retyped')
    for (const page of [ada, bob]) {
      await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 15_000 }).toBe('Checkout times out')
      await page.getByTestId('text-merge').first().waitFor({ timeout: 15_000 })
    }

    // Bob adds to the settled title; before his pause ends the typing, Ada changes the status. Her device must not
    // write the settled value again over his words, whose history entry is not written yet.
    await bob.locator('#f-title').click()
    await bob.keyboard.press('End')
    await bob.keyboard.type(' on iOS')
    await expect.poll(() => ada.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe('Checkout times out on iOS')
    await ada.locator('#f-status').selectOption('in_progress')
    await bob.keyboard.press('Tab')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)
    for (const page of [ada, bob]) {
      await expect.poll(() => page.locator('#f-status').inputValue(), { timeout: 10_000 }).toBe('in_progress')
      await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe('Checkout times out on iOS')
    }
    await expect.poll(() => ada.getByTestId('history').innerText(), { timeout: 10_000 }).toContain('added “ on iOS” to title')
    await screenshot(ada, 'web-text-merge-title-typed-after')
  }, 120_000)

  it('a collision settled while a third person types into the title keeps every letter they typed', async () => {
    // Carol types at the start of the title, steadily (her typing burst stays open: no pause), while Bob comes back
    // with his offline version. The devices settle the collision on Ada's later title around Carol's letters; her
    // entry is written once she leaves the field.
    let carol: Page | undefined
    let typed = ''
    let stop = false
    let typing: Promise<void> = Promise.resolve()
    const phrase = 'iOS and Android, also on the web since the last release: '
    const { ada, bob } = await collideTitles('typed-meanwhile', async (id) => {
      carol = await signIn(await context(), web.relay().url, 'Carol Diaz', 'typed-meanwhile')
      await carol.goto(`${web.relay().url}#/t/${id}`)
      await expect.poll(() => carol!.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe('Checkout times out')
      await carol.locator('#f-title').click()
      await carol.keyboard.press('Home')
      typing = (async () => {
        for (const char of phrase) {
          if (stop) break
          await carol!.keyboard.type(char)
          typed += char
          await new Promise((resolve) => setTimeout(resolve, 250))
        }
      })()
      await expect.poll(() => typed.length, { timeout: 10_000 }).toBeGreaterThan(3)
    })
    // Settled on every screen (Bob's words gone, the card shown) while Carol still types; then she stops and leaves.
    for (const page of [ada, bob]) {
      await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 15_000 }).not.toContain('Signup')
      await page.getByTestId('text-merge').first().waitFor({ timeout: 15_000 })
    }
    stop = true
    await typing
    expect(typed.length, 'Carol had not finished her phrase before the collision was settled').toBeLessThan(phrase.length)
    await carol!.keyboard.press('Tab')
    const title = `${typed}Checkout times out`
    for (const page of [ada, bob, carol!]) {
      await expect.poll(() => pendingShown(page), { timeout: 10_000 }).toBe(0)
      await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe(title)
    }
    await expect.poll(() => ada.getByTestId('history').innerText(), { timeout: 10_000 }).toMatch(`Carol Diaz\nadded “${typed}” to title`)
    // One card, Ada's and Bob's collision (a settlement and Carol's typing on the same entry are none); its
    // current version is Ada's title with Carol's words, and it names both.
    await expect.poll(() => ada.getByTestId('text-merge').count(), { timeout: 10_000 }).toBe(1)
    const card = await ada.getByTestId('text-merge').innerText()
    expect(card).toContain('Signup fails on Safari')
    expect(card).toContain('by Ada Lovelace and Carol Diaz')
    await screenshot(ada, 'web-text-merge-title-typed-meanwhile')
  }, 120_000)

  it('back online while still typing in a title he changed offline: both screens show his later title whole while he types on', async () => {
    const { ada, bob, bobContext } = await bothOnATicket('typing-back', 'Checkout times out')
    // On the train Bob adds " on iOS" to the title; in the office Ada adds " on Android"; Bob, still offline, goes on
    // typing " 17" — and keeps typing, no pause, as his connection comes back.
    await bobContext.setOffline(true)
    await bob.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await addToTitle(bob, ' on iOS')
    await addToTitle(ada, ' on Android')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await bob.locator('#f-title').click()
    await bob.keyboard.press('End')
    await bob.keyboard.type(' 17')
    let typed = ' 17'
    let stop = false
    const phrase = '.2 and later, on the Safari preview builds as well as the release ones'
    const typing = (async () => {
      for (const char of phrase) {
        if (stop) break
        await bob.keyboard.type(char)
        typed += char
        await new Promise((resolve) => setTimeout(resolve, 300))
      }
    })()
    await bobContext.setOffline(false)
    // His typing is the later change: both screens show his title whole while he still types — before, until his
    // pause, Ada's screen read "Checkout times out 17.2 and later, on…": both versions gone, a title nobody wrote.
    for (const page of [ada, bob]) {
      await expect
        .poll(() => page.locator('#f-title').inputValue(), { timeout: 15_000 })
        .toMatch(/^Checkout times out on iOS 17\.2 and(?!.*Android)/)
    }
    expect(typed.length, 'Bob was still typing when both screens showed his title').toBeLessThan(' 17'.length + phrase.length)
    await screenshot(ada, 'web-text-merge-typing-back')
    stop = true
    await typing
    await bob.keyboard.press('Tab')
    const title = `Checkout times out on iOS${typed}`
    for (const page of [ada, bob]) {
      await expect.poll(() => pendingShown(page), { timeout: 10_000 }).toBe(0)
      await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe(title)
    }
    // The card offers Ada's version. The devices settled the merge in rounds, each knowing part of it at first: the
    // timeline says so in one line, not one per round.
    const card = ada.getByTestId('text-merge').first()
    await card.waitFor({ timeout: 10_000 })
    expect(await card.innerText()).toContain('Checkout times out on Android')
    const timeline = await ada.getByTestId('history').innerText()
    expect(timeline.match(/Merged automatically/g)).toHaveLength(1)
    expect(timeline).toMatch(
      /title settled on the later change, on (Ada Lovelace|Bob Stone)'s (device|and (Ada Lovelace|Bob Stone)'s devices)/,
    )
    await screenshot(ada, 'web-text-merge-typing-back-settled')
  }, 120_000)

  it("two people typing into a title live, one right after the other's words before their pause, both keep every word", async () => {
    const { ada, bob } = await bothOnATicket('live-title', 'Checkout times out')
    await bob.locator('#f-title').click()

    // Ada adds to the title; Bob sees her words and adds his after them while her typing burst is still open.
    await ada.locator('#f-title').click()
    await ada.keyboard.press('End')
    await ada.keyboard.type(' on iOS')
    const adaDone = Date.now()
    await expect.poll(() => bob.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe('Checkout times out on iOS')
    await bob.keyboard.press('End')
    await bob.keyboard.type(' (urgent)')
    expect(Date.now() - adaDone, 'Bob typed before Ada paused (1.5 s)').toBeLessThan(1_500)
    await expect.poll(() => ada.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe('Checkout times out on iOS (urgent)')
    await ada.keyboard.press('Tab')
    await bob.keyboard.press('Tab')
    for (const page of [ada, bob]) await expect.poll(() => pendingShown(page), { timeout: 10_000 }).toBe(0)
    for (const page of [ada, bob]) {
      await expect
        .poll(() => page.getByTestId('history').innerText(), { timeout: 10_000 })
        .toMatch(/Bob Stone\nadded “ \(urgent\)” to title/)
      expect(await page.getByTestId('history').innerText()).toMatch(/Ada Lovelace\nadded “ on iOS” to title/)
      expect(await page.locator('#f-title').inputValue()).toBe('Checkout times out on iOS (urgent)')
      // Both contributions were merged: nothing was settled, no card asks anyone to choose.
      expect(await page.getByTestId('text-merge').count()).toBe(0)
      expect(await page.getByTestId('history').innerText()).not.toContain('settled on the later change')
    }
    await screenshot(ada, 'web-text-merge-title-live')
  }, 120_000)

  it('two people typing into a title at the same moment, twice, in different places: every word stays, no card', async () => {
    const { ada, bob } = await bothOnATicket('cotype-title', 'Login fails')
    /** Both type in turns; once both screens show `both`, both leave the field. */
    const together = async (adas: string, bobs: string, both: string) => {
      await typeInTurns(ada, adas, bob, bobs)
      for (const page of [ada, bob]) await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe(both)
      await ada.keyboard.press('Tab')
      await bob.keyboard.press('Tab')
      for (const page of [ada, bob]) await expect.poll(() => pendingShown(page), { timeout: 10_000 }).toBe(0)
    }
    await ada.locator('#f-title').click()
    await bob.locator('#f-title').click()
    await titleCaret(ada, 'Login fails'.length)
    await titleCaret(bob, 0)
    await together(' on Safari', 'Urgent: ', 'Urgent: Login fails on Safari')
    for (const page of [ada, bob])
      await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe('Urgent: Login fails on Safari')
    // Again, both on top of that merge: Ada after "Login", Bob at the end. Before, "page" left the title once both
    // paused — the later side, Bob's, read as including Ada's first keystroke, was kept — and no card offered it back.
    await ada.locator('#f-title').click()
    await bob.locator('#f-title').click()
    await titleCaret(ada, 'Urgent: Login'.length)
    await titleCaret(bob, 'Urgent: Login fails on Safari'.length)
    await together(' page', ' 17.2', 'Urgent: Login page fails on Safari 17.2')
    for (const page of [ada, bob]) {
      await expect.poll(() => page.locator('#f-title').inputValue(), { timeout: 10_000 }).toBe('Urgent: Login page fails on Safari 17.2')
      await expect.poll(() => page.getByTestId('history').innerText(), { timeout: 10_000 }).toMatch(/added “page ” to title/)
      expect(await page.getByTestId('text-merge').count()).toBe(0)
      expect(await page.getByTestId('history').innerText()).not.toContain('settled on the later change')
    }
    await screenshot(bob, 'web-text-merge-title-cotyped')
  }, 120_000)

  it('two people typing at the end of a title at the same moment: both texts whole, each in one piece, no card', async () => {
    const { ada, bob } = await bothOnATicket('cotype-end', 'Login fails')
    await ada.locator('#f-title').click()
    await bob.locator('#f-title').click()
    await titleCaret(ada, 'Login fails'.length)
    await titleCaret(bob, 'Login fails'.length)
    // Keystroke by keystroke, in turns, each watching the other's appear. Before, once both paused, the later one's
    // text stood alone and the other's was on a card: typed at one place, the two collided as if made offline.
    await typeInTurns(ada, ' on Safari', bob, ' since 17.2')
    await ada.keyboard.press('Tab')
    await bob.keyboard.press('Tab')
    for (const page of [ada, bob]) await expect.poll(() => pendingShown(page), { timeout: 10_000 }).toBe(0)
    const title = await ada.locator('#f-title').inputValue()
    expect(['Login fails on Safari since 17.2', 'Login fails since 17.2 on Safari']).toContain(title)
    for (const page of [ada, bob]) {
      await expect
        .poll(() => page.getByTestId('history').innerText(), { timeout: 10_000 })
        .toMatch(/Bob Stone\nadded “ ?since 17\.2 ?” to title/)
      expect(await page.getByTestId('history').innerText()).toMatch(/Ada Lovelace\nadded “ ?on Safari ?” to title/)
      expect(await page.locator('#f-title').inputValue()).toBe(title)
      expect(await page.getByTestId('text-merge').count()).toBe(0)
      expect(await page.getByTestId('history').innerText()).not.toContain('settled on the later change')
    }
    await screenshot(ada, 'web-text-merge-title-same-place')
  }, 120_000)

  it('a description replaced by both holds both versions whole until someone picks; typing into different parts live is no conflict', async () => {
    const adaContext = await context()
    const bobContext = await context()
    const [ada, bob] = await Promise.all([
      signIn(adaContext, web.relay().url, 'Ada Lovelace', 'descriptions'),
      signIn(bobContext, web.relay().url, 'Bob Stone', 'descriptions'),
    ])
    const id = await createTicket(ada, 'Crash on start')
    await replaceText(ada, '#f-description', 'The app crashes when it starts.')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await bob.goto(`${web.relay().url}#/t/${id}`)
    await expect.poll(() => bob.locator('#f-description').inputValue(), { timeout: 10_000 }).toBe('The app crashes when it starts.')

    // Live, different parts: Ada adds at the start, Bob at the end — both kept, no card.
    await ada.locator('#f-description').click()
    await ada.keyboard.press('ControlOrMeta+Home')
    await ada.keyboard.type('Android: ')
    await bob.locator('#f-description').click()
    await bob.keyboard.press('ControlOrMeta+End')
    await bob.keyboard.type(' Since 2.4.')
    await ada.keyboard.press('Tab')
    await bob.keyboard.press('Tab')
    for (const page of [ada, bob]) {
      await expect
        .poll(() => page.locator('#f-description').inputValue(), { timeout: 10_000 })
        .toBe('Android: The app crashes when it starts. Since 2.4.')
    }
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)
    expect(await ada.getByTestId('text-merge').count()).toBe(0)

    // Offline, the same words: both versions stay whole, one after the other (Bob's, the earlier, first).
    const bobs = 'Android: The app freezes on the splash screen. Since 2.4.'
    const adas = 'Android: The app crashes on every start. Since 2.4.'
    await bobOfflineThenAda(
      { ada, bob, bobContext },
      () => replaceText(bob, '#f-description', bobs),
      () => replaceText(ada, '#f-description', adas),
    )
    for (const page of [ada, bob]) {
      await expect.poll(() => page.locator('#f-description').inputValue(), { timeout: 15_000 }).toBe(`${bobs}\n${adas}`)
      const card = page.getByTestId('text-merge').first()
      await card.waitFor({ timeout: 15_000 })
      const text = await card.innerText()
      expect(text).toContain('Description was changed by two people at once')
      expect(text).toContain(bobs)
      expect(text).toContain(adas)
      expect(text).toContain('Both versions are in the text, one after the other: pick one, or keep both')
      expect(await card.getByTestId('use-version').count()).toBe(2)
      expect(await card.getByTestId('keep-merge').innerText()).toBe('Keep both')
      expect(await page.getByTestId('history').innerText()).toContain('both versions kept, one after the other, on')
    }
    await screenshot(ada, 'web-text-merge-description')

    // Bob picks Ada's version: it alone stays, on both screens, also after a reload.
    await bob.getByRole('button', { name: "Use Ada Lovelace's version of the description" }).click()
    for (const page of [ada, bob]) {
      await expect.poll(() => page.locator('#f-description').inputValue(), { timeout: 10_000 }).toBe(adas)
      await expect
        .poll(() => page.getByTestId('merge-outcome').first().innerText(), { timeout: 10_000 })
        .toBe("Bob Stone chose Ada Lovelace's version")
    }
    await expect.poll(() => pendingShown(bob), { timeout: 10_000 }).toBe(0)
    await ada.reload()
    await expect.poll(() => ada.locator('#f-description').inputValue(), { timeout: 15_000 }).toBe(adas)
    await screenshot(ada, 'web-text-merge-description-chosen')
  }, 120_000)

  it('a sentence both select and retype, beginning as it did: both sentences whole, with the card', async () => {
    const { ada, bob, bobContext } = await bothOnATicket('descriptions-retyped', 'Crash on start')
    await replaceText(ada, '#f-description', 'Owner: tbd.')
    await ada.keyboard.press('Shift+Tab')
    await ada.keyboard.press('ControlOrMeta+Home')
    await ada.keyboard.type('The app crashes.\n')
    await ada.keyboard.press('Tab')
    await expect.poll(() => bob.locator('#f-description').inputValue(), { timeout: 10_000 }).toBe('The app crashes.\nOwner: tbd.')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await bobOfflineThenAda(
      { ada, bob, bobContext },
      () => retypeLine(bob, 'first', 'The app crashes on iOS 17.'),
      () => retypeLine(ada, 'first', 'The app crashes on Android 14.'),
    )
    // Before: "The app crashes on iOS 17.he app crashes on Android 14." on both screens, and no card.
    for (const page of [ada, bob]) {
      await expect
        .poll(() => page.locator('#f-description').inputValue(), { timeout: 15_000 })
        .toBe('The app crashes on iOS 17.\nThe app crashes on Android 14.\nOwner: tbd.')
      await page.getByTestId('text-merge').first().waitFor({ timeout: 10_000 })
    }

    // Ada names the owner; then Bob chooses Ada's sentence: it replaces the two sentences, and the owner line stays.
    await retypeLine(ada, 'last', 'Owner: Ada.')
    await expect.poll(() => bob.locator('#f-description').inputValue(), { timeout: 10_000 }).toMatch(/Owner: Ada\.$/)
    await bob.getByRole('button', { name: "Use Ada Lovelace's version of the description" }).click()
    for (const page of [ada, bob])
      await expect
        .poll(() => page.locator('#f-description').inputValue(), { timeout: 10_000 })
        .toBe('The app crashes on Android 14.\nOwner: Ada.')
  }, 120_000)

  /** Bob, offline, and then Ada rewrite the second line of a description; Bob reconnects and both see both versions. */
  const bothRewroteTheLastLine = async (workspace: string, bobViewport?: { width: number; height: number }) => {
    const { ada, bob, bobContext } = await bothOnATicket(workspace, 'Export broken', bobViewport)
    await replaceText(ada, '#f-description', 'Steps: open a report.\nClick Export.')
    await expect.poll(() => bob.locator('#f-description').inputValue(), { timeout: 10_000 }).toBe('Steps: open a report.\nClick Export.')
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await bobOfflineThenAda(
      { ada, bob, bobContext },
      () => retypeLine(bob, 'last', 'Click Export, then Save.'),
      () => retypeLine(ada, 'last', 'Press Ctrl+E.'),
    )
    const both = 'Steps: open a report.\nClick Export, then Save.\nPress Ctrl+E.'
    for (const page of [ada, bob]) await expect.poll(() => page.locator('#f-description').inputValue(), { timeout: 15_000 }).toBe(both)
    return { ada, bob, bobContext, both }
  }

  it('a line under a long pasted crash log, rewritten by both: both lines, a card with just those lines, either one click away', async () => {
    const { ada, bob, bobContext } = await bothOnATicket('descriptions-long', 'Crash on start')
    const log = `Crash log:\n${Array.from({ length: 80 }, (_, i) => `  at render${i} (app.js:${100 + i}:${i * 7})`).join('\n')}\n`
    expect(log.length).toBeGreaterThan(2_000)
    await ada.locator('#f-description').fill(`${log}Sync is slow on login.`) // pasted
    await ada.keyboard.press('Tab')
    await expect.poll(() => bob.locator('#f-description').inputValue(), { timeout: 10_000 }).toBe(`${log}Sync is slow on login.`)
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await bobOfflineThenAda(
      { ada, bob, bobContext },
      () => retypeLine(bob, 'last', 'Sync is slow since 1.2, on every device.'),
      () => retypeLine(ada, 'last', 'Login takes 3 s on a cold start.'),
    )
    // Not "Login takes 3 s on a cold start.since 1.2, on every device." (what the CRDT alone makes of it).
    const both = `${log}Sync is slow since 1.2, on every device.\nLogin takes 3 s on a cold start.`
    for (const page of [ada, bob]) {
      await expect.poll(() => page.locator('#f-description').inputValue(), { timeout: 15_000 }).toBe(both)
      const card = page.getByTestId('text-merge').first()
      await card.waitFor({ timeout: 15_000 })
      expect(await card.innerText()).toContain('Both versions are in the text, one after the other: pick one, or keep both')
      // Each version as the lines it differs in, not the log both share.
      expect(await card.locator('.side-value').allInnerTexts()).toEqual([
        '…\nSync is slow since 1.2, on every device.',
        '…\nLogin takes 3 s on a cold start.',
      ])
      expect(await card.getByTestId('use-version').count()).toBe(2)
    }
    await bob
      .getByTestId('text-merge')
      .first()
      .evaluate((el) => el.scrollIntoView({ block: 'center' }))
    await screenshot(bob, 'web-text-merge-long-description', { fullPage: false })
    await bob.getByRole('button', { name: "Use Ada Lovelace's version of the description" }).click()
    for (const page of [ada, bob])
      await expect
        .poll(() => page.locator('#f-description').inputValue(), { timeout: 10_000 })
        .toBe(`${log}Login takes 3 s on a cold start.`)
  }, 120_000)

  it('a description both rewrote, "Keep both" keeps the two versions as they stand', async () => {
    const { ada, bob, both } = await bothRewroteTheLastLine('descriptions-kept')
    // With the keyboard: the button goes, and the focus goes to what the card now says (before: to the page's start).
    await ada.getByTestId('keep-merge').first().focus()
    await ada.keyboard.press('Enter')
    await expect
      .poll(() => ada.evaluate(() => document.activeElement?.getAttribute('data-testid')), { timeout: 10_000 })
      .toBe('merge-outcome')
    await expect.poll(() => ada.evaluate(() => document.activeElement?.textContent)).toBe('Ada Lovelace kept it as merged')
    for (const page of [ada, bob]) {
      await expect
        .poll(() => page.getByTestId('merge-outcome').first().innerText(), { timeout: 10_000 })
        .toBe('Ada Lovelace kept it as merged')
      expect(await page.locator('#f-description').inputValue()).toBe(both)
      expect(await page.getByTestId('keep-merge').count()).toBe(0)
    }
  }, 120_000)

  it('both pick a different version at the same moment, one offline: the later choice stands on both screens', async () => {
    const { ada, bob, bobContext } = await bothRewroteTheLastLine('descriptions-picked')
    await bobContext.setOffline(true)
    await bob.getByTestId('offline-banner').waitFor({ timeout: 15_000 })
    await bob.getByRole('button', { name: "Use Bob Stone's version of the description" }).click()
    await expect
      .poll(() => bob.locator('#f-description').inputValue(), { timeout: 10_000 })
      .toBe('Steps: open a report.\nClick Export, then Save.')
    await ada.getByRole('button', { name: "Use Ada Lovelace's version of the description" }).click()
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await bobContext.setOffline(false)
    await expect.poll(() => pendingShown(bob), { timeout: 20_000 }).toBe(0)
    // Merged line by line, each choice deleted the line the other kept: the description lost both versions.
    for (const page of [ada, bob]) {
      await expect.poll(() => page.locator('#f-description').inputValue(), { timeout: 15_000 }).toBe('Steps: open a report.\nPress Ctrl+E.')
      await expect
        .poll(() => page.getByTestId('merge-outcome').first().innerText(), { timeout: 10_000 })
        .toBe('Both chose a version at the same time: kept the later choice, by Ada Lovelace')
      // The first card names the choice the text holds, not the one this browser received last.
      expect(await page.getByTestId('merge-outcome').nth(1).innerText()).toBe('Ada Lovelace chose their own version')
      const card = page.getByTestId('text-merge').first()
      expect(await card.innerText()).toContain('Click Export, then Save.')
      await expect
        .poll(() => page.getByTestId('history').innerText(), { timeout: 10_000 })
        .toContain('description settled on the later change')
    }
    await screenshot(bob, 'web-text-merge-description-both-chose')
    // Bob's choice is one click away.
    await bob.getByTestId('text-merge').first().getByRole('button', { name: "Use Bob Stone's version of the description" }).click()
    for (const page of [ada, bob])
      await expect
        .poll(() => page.locator('#f-description').inputValue(), { timeout: 10_000 })
        .toBe('Steps: open a report.\nClick Export, then Save.')
  }, 120_000)

  it('paragraphs both rewrote: the description box grows to show both versions whole; the timeline says what each rewrote', async () => {
    const { ada, bob, bobContext } = await bothOnATicket('descriptions-paragraphs', 'Export broken')
    const lines = ['Export fails.', 'Steps:', '1. Open a report.', '2. Click Export.', 'Seen on 1.4.']
    await ada.locator('#f-description').click()
    await ada.keyboard.insertText(lines.join('\n'))
    await ada.keyboard.press('Tab')
    await expect.poll(() => bob.locator('#f-description').inputValue(), { timeout: 10_000 }).toBe(lines.join('\n'))
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    /** Selects lines 2–4 (Shift+Down: with the line break after them) and writes `text` over them. */
    const rewriteSteps = async (page: Page, text: string) => {
      await page.locator('#f-description').click()
      await page.keyboard.press('ControlOrMeta+Home')
      await page.keyboard.press('ArrowDown')
      for (let i = 0; i < 3; i++) await page.keyboard.press('Shift+ArrowDown')
      await page.keyboard.insertText(text)
      await page.keyboard.press('Tab')
    }
    await bobOfflineThenAda(
      { ada, bob, bobContext },
      () => rewriteSteps(bob, 'Steps (Safari):\n1. Open any report.\n2. Press Export.\n'),
      () => rewriteSteps(ada, 'Steps (Chrome):\n1. Open a big report.\n2. Click Export and wait.\n'),
    )
    // One empty line between the versions (before: two, each version's line break kept before it).
    const both = [
      'Export fails.',
      'Steps (Safari):\n1. Open any report.\n2. Press Export.\n\nSteps (Chrome):\n1. Open a big report.\n2. Click Export and wait.',
      'Seen on 1.4.',
    ].join('\n')
    for (const page of [ada, bob]) {
      await expect.poll(() => page.locator('#f-description').inputValue(), { timeout: 15_000 }).toBe(both)
      // Nine lines: the box shows every one of them, no scrolling inside it (before: six, the rest hidden below).
      const box = await page.locator('#f-description').evaluate((el) => ({ scroll: el.scrollHeight, client: el.clientHeight }))
      expect(box.scroll).toBeLessThanOrEqual(box.client + 1)
    }
    // The timeline says what each rewrote (before: "edited description").
    await expect
      .poll(() => bob.getByTestId('history').innerText(), { timeout: 10_000 })
      .toContain('replaced “Steps: 1. Open a report. 2. Click” with “Steps (Safari): 1. Open any report. 2. Press” in description')
    await screenshot(bob, 'web-text-merge-description-paragraphs')
  }, 120_000)

  it('on a phone, where the card is below the comments, the description says it holds two versions and leads to the card', async () => {
    const { ada, bob } = await bothRewroteTheLastLine('descriptions-phone', { width: 390, height: 760 })
    for (const page of [ada, bob]) await page.getByTestId('choose-description').waitFor({ timeout: 10_000 })
    // The card is out of sight below the comments; the tag beside the description's label takes Bob to it.
    const card = bob.getByTestId('text-merge').first()
    const inView = async () => {
      const box = (await card.boundingBox())!
      return box.y >= 0 && box.y < 760
    }
    await bob.evaluate(() => window.scrollTo(0, 0)) // the page's top, whatever field had the focus
    expect(await inView()).toBe(false)
    await screenshot(bob, 'web-text-merge-phone-tag', { fullPage: false })
    await bob.getByTestId('choose-description').click()
    await expect.poll(inView, { timeout: 5_000 }).toBe(true)
    expect(await bob.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('use-version')
    await screenshot(bob, 'web-text-merge-phone-card', { fullPage: false })
    // Once someone chose, the tag goes, on both screens.
    await bob.keyboard.press('Enter')
    for (const page of [ada, bob]) await expect.poll(() => page.getByTestId('choose-description').count(), { timeout: 10_000 }).toBe(0)
  }, 120_000)

  /** Puts the caret of the description after its first `n` characters. */
  const caretAt = async (page: Page, n: number): Promise<void> => {
    await page.locator('#f-description').click()
    await page.keyboard.press('ControlOrMeta+Home')
    for (let i = 0; i < n; i++) await page.keyboard.press('ArrowRight')
  }

  /**
   * Ada writes the description `base`; Bob, offline, and then Ada change the same word with the keyboard (`bobs`,
   * `adas`); after Bob's reconnect both screens show `both` with the card, and Bob picks Ada's version, `adaVersion`.
   */
  const sameWord = async (
    workspace: string,
    base: string,
    bobs: (page: Page) => Promise<void>,
    adas: (page: Page) => Promise<void>,
    both: string,
    adaVersion: string,
  ) => {
    const { ada, bob, bobContext } = await bothOnATicket(workspace, 'Migration')
    await replaceText(ada, '#f-description', base)
    await expect.poll(() => bob.locator('#f-description').inputValue(), { timeout: 10_000 }).toBe(base)
    await expect.poll(() => pendingShown(ada), { timeout: 10_000 }).toBe(0)
    await bobOfflineThenAda(
      { ada, bob, bobContext },
      async () => {
        await bobs(bob)
        await bob.keyboard.press('Tab')
      },
      async () => {
        await adas(ada)
        await ada.keyboard.press('Tab')
      },
    )
    for (const page of [ada, bob]) {
      await expect.poll(() => page.locator('#f-description').inputValue(), { timeout: 15_000 }).toBe(both)
      await page.getByTestId('text-merge').first().waitFor({ timeout: 10_000 })
      await page.getByTestId('choose-description').waitFor({ timeout: 10_000 })
    }
    await screenshot(bob, `web-text-merge-${workspace}`)
    await bob.getByRole('button', { name: "Use Ada Lovelace's version of the description" }).click()
    for (const page of [ada, bob])
      await expect.poll(() => page.locator('#f-description').inputValue(), { timeout: 10_000 }).toBe(adaVersion)
  }

  it('letters typed onto a word the other replaced: both lines with the card, never a word neither wrote', async () => {
    // Before: "Task: unfinished." on both screens — the opposite of what either wrote — and no card.
    await sameWord(
      'description-word',
      'Task: done.',
      async (bob) => {
        await caretAt(bob, 'Task: '.length) // in front of "done"
        await bob.keyboard.type('un')
      },
      async (ada) => {
        await caretAt(ada, 'Task: done'.length) // selects "done" and writes over it
        for (let i = 0; i < 'done'.length; i++) await ada.keyboard.press('Shift+ArrowLeft')
        await ada.keyboard.type('finished')
      },
      'Task: undone.\nTask: finished.',
      'Task: finished.',
    )
  }, 120_000)

  it('digits both typed at the end of one number: both lines with the card, never a number neither wrote', async () => {
    // Before: "Budget: 1050k" on both screens, and no card.
    await sameWord(
      'description-number',
      'Budget: 10k',
      async (bob) => {
        await caretAt(bob, 'Budget: 10'.length)
        await bob.keyboard.type('0')
      },
      async (ada) => {
        await caretAt(ada, 'Budget: 10'.length)
        await ada.keyboard.type('5')
      },
      'Budget: 100k\nBudget: 105k',
      'Budget: 105k',
    )
  }, 120_000)

  it('an empty description both filled in, one offline: each text on its own line with the card, not run together', async () => {
    const { ada, bob, bobContext } = await bothOnATicket('descriptions-filled', 'Crash on start')
    await bobOfflineThenAda(
      { ada, bob, bobContext },
      () => replaceText(bob, '#f-description', 'Bob: steps — open app, wait.'),
      () => replaceText(ada, '#f-description', 'Ada: it crashes when the cache is cold.'),
    )
    for (const page of [ada, bob]) {
      // Before: "Ada: it crashes when the cache is cold.Bob: steps — open app, wait." and no card.
      await expect
        .poll(() => page.locator('#f-description').inputValue(), { timeout: 15_000 })
        .toBe('Bob: steps — open app, wait.\nAda: it crashes when the cache is cold.')
      await page.getByTestId('text-merge').first().waitFor({ timeout: 10_000 })
      await page.getByTestId('choose-description').waitFor({ timeout: 10_000 })
    }
    await screenshot(ada, 'web-text-merge-description-filled')
  }, 120_000)
})
