import type { ComponentChildren } from 'preact';
import { onLinkClick } from '../router.js';

export function Link(props: {
  href: string;
  children: ComponentChildren;
  class?: string;
  'aria-current'?: 'page' | undefined;
  'aria-label'?: string;
  onNavigate?: () => void;
}) {
  const { href, children, onNavigate, ...rest } = props;
  return (
    <a
      href={href}
      {...rest}
      onClick={(e) => {
        onLinkClick(e);
        onNavigate?.();
      }}
    >
      {children}
    </a>
  );
}
