import { parseLocation, type Route } from './routes.js';

/** The page shown now; replaced on every navigation (links, back and forward, reloads). */
export const navigation = $state({ route: currentRoute() });

function currentRoute(): Route {
  return parseLocation(window.location.pathname, window.location.search);
}

/** Goes to `to` (a path of the UI) without reloading; `replace` keeps the history entry (typing). */
export function navigate(to: string, replace = false): void {
  if (replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  navigation.route = currentRoute();
  if (!replace) window.scrollTo(0, 0);
}

/** Plain clicks on same-origin links navigate in place; modified clicks open tabs as usual. */
function interceptLinks(event: MouseEvent): void {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const anchor = (event.target as Element | null)?.closest?.('a');
  if (anchor === null || anchor === undefined) return;
  if (anchor.target !== '' || anchor.hasAttribute('download')) return;
  if (anchor.origin !== window.location.origin || anchor.pathname.startsWith('/v2/')) return;
  event.preventDefault();
  navigate(anchor.pathname + anchor.search);
}

export function startNavigation(): void {
  window.addEventListener('popstate', () => {
    navigation.route = currentRoute();
  });
  document.addEventListener('click', interceptLinks);
}
