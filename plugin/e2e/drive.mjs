// Drives headless Chromium (Debian's, no download) through the PersAI plugin on the host page:
// ask, see the tool call and its chart, reload mid-run and see it resume, read the answer,
// cancel another. Prints what it saw as one JSON line; tests/integration/test_plugin_browser.py
// judges it. Environment: HOST_URL, PERSAI_URL, COOKIES (JSON name -> value), QUESTION,
// SLOW_QUESTION, SCREENSHOT.
import { chromium } from 'playwright-core';

const env = process.env;
const STEP_MS = 60_000;

const browser = await chromium.launch({
  executablePath: env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const seen = { console: [] };
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 1400 } });
  const cookies = Object.entries(JSON.parse(env.COOKIES ?? '{}')).map(([name, value]) => ({
    name,
    value,
    domain: '127.0.0.1',
    path: '/',
    httpOnly: true,
    sameSite: 'Lax',
  }));
  await context.addCookies(cookies);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('console', (message) => {
    if (message.type() === 'error') seen.console.push(message.text().slice(0, 300));
  });
  await page.goto(`${env.HOST_URL}/?persai_url=${encodeURIComponent(env.PERSAI_URL)}`);

  // ask
  await page.locator('#persai-datasource').click();
  await page.getByRole('option', { name: 'prom', exact: true }).click();
  await page.getByLabel('Ask PersAI about your metrics').fill(env.QUESTION);
  await page.getByRole('button', { name: 'Investigate' }).click();
  const investigation = page.locator('.persai-investigation').first();
  await investigation.locator('.persai-tool-call[data-tool="execute_range_query"][data-status="ok"]').waitFor();
  seen.id = await investigation.getAttribute('data-id');
  seen.statusBeforeReload = await investigation.getAttribute('data-status');
  seen.urlBeforeReload = page.url();

  // reload mid-run: the page reopens the investigation and follows it where it is
  await page.reload();
  const reopened = page.locator(`.persai-investigation[data-id="${seen.id}"]`);
  await reopened.locator('.persai-tool-call[data-tool="execute_range_query"]').waitFor();
  seen.statusAfterReload = await reopened.getAttribute('data-status');
  await reopened.locator('.persai-answer').waitFor();
  seen.answer = await reopened.locator('.persai-answer').innerText();
  seen.finalStatus = await reopened.getAttribute('data-status');
  seen.toolCall = await reopened.locator('.persai-tool-call').first().innerText();

  // the chart: series drawn on a canvas, over the queried window
  const chart = reopened.locator('.persai-chart-body[data-loading="false"]').first();
  await chart.waitFor();
  seen.series = Number(await chart.getAttribute('data-series'));
  await chart.locator('canvas').first().waitFor();
  await page.waitForTimeout(500); // echarts animates the first draw
  seen.inkedPixels = await chart
    .locator('canvas')
    .first()
    .evaluate((canvas) => {
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let inked = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked += 1;
      return inked;
    });
  seen.chartCaption = await reopened.locator('.persai-chart').first().innerText();
  await page.screenshot({ path: env.SCREENSHOT, fullPage: true });

  // its charts as a Perses dashboard, saved in the project with the user's own rights
  await reopened.getByRole('button', { name: 'Open as dashboard' }).click();
  seen.dashboardLink = await reopened.getByRole('link', { name: 'open the dashboard' }).getAttribute('href');

  // another, cancelled while it runs
  await page.getByRole('button', { name: 'New question' }).click();
  await page.locator('#persai-datasource').click();
  await page.getByRole('option', { name: 'prom', exact: true }).click();
  await page.getByLabel('Ask PersAI about your metrics').fill(env.SLOW_QUESTION);
  await page.getByRole('button', { name: 'Investigate' }).click();
  const slow = page.locator('.persai-investigation[data-status="running"]').first();
  await slow.waitFor();
  seen.slowId = await slow.getAttribute('data-id');
  await slow.getByRole('button', { name: 'Cancel' }).click();
  await page.locator(`.persai-investigation[data-id="${seen.slowId}"][data-status="cancelled"]`).waitFor();
  seen.cancelled = true;
} catch (error) {
  seen.error = String(error?.stack ?? error).slice(0, 2000);
  seen.html = await browser
    .contexts()[0]
    ?.pages()[0]
    ?.locator('body')
    .innerText()
    .catch(() => '');
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
