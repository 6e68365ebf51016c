/**
 * What the signed-in user may do in the workspace, for components deep in
 * the page (a "New …" button) without threading a prop through every page:
 * `Workspace` sets it once, components read it from the Svelte context.
 *
 * @module lib/access
 */
import { getContext, setContext } from 'svelte'

export interface WorkspaceAccess {
  /** The token grants read access only: nothing can be created or changed (the relay refuses it anyway). */
  readonly readOnly: boolean
}

const KEY = Symbol('concord:workspace-access')

/** Sets the workspace's access for the components below (call during component initialisation). */
export const setWorkspaceAccess = (access: WorkspaceAccess): void => {
  setContext(KEY, access)
}

/** The workspace's access; full access outside a workspace. */
export const workspaceAccess = (): WorkspaceAccess => getContext<WorkspaceAccess | undefined>(KEY) ?? { readOnly: false }
