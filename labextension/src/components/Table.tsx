import * as React from 'react';

export interface Column<T> {
  id: string;
  header: React.ReactNode;
  cell: (row: T) => React.ReactNode;
  /** Set for server-sorted columns: the header becomes a button. */
  sort?: 'ascending' | 'descending' | 'none';
  onSort?: () => void;
  className?: string;
}

export interface TableProps<T> {
  caption: string;
  columns: Column<T>[];
  rows: T[];
  rowKey: (row: T) => string;
  selected?: string | null;
  onSelect?: (key: string) => void;
  /** data-testid of the rows; the main list of a tab uses the default. */
  rowTestId?: string;
}

const ARROWS = { ascending: ' ▲', descending: ' ▼', none: '' };

/**
 * A table whose rows can be focused and selected with the keyboard (Enter or Space),
 * for the lists of every tab.
 */
export function Table<T>(props: TableProps<T>): JSX.Element {
  const { columns, rows, rowKey, selected, onSelect } = props;
  return (
    <div className="mlplat-table-scroll">
      <table className="mlplat-table">
        <caption className="mlplat-visually-hidden">{props.caption}</caption>
        <thead>
          <tr>
            {columns.map(column => (
              <th
                key={column.id}
                scope="col"
                className={column.className}
                aria-sort={column.onSort ? (column.sort ?? 'none') : undefined}
              >
                {column.onSort ? (
                  <button type="button" className="mlplat-sort" onClick={column.onSort}>
                    {column.header}
                    <span aria-hidden="true">{ARROWS[column.sort ?? 'none']}</span>
                  </button>
                ) : (
                  column.header
                )}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map(row => {
            const key = rowKey(row);
            const isSelected = selected === key;
            return (
              <tr
                key={key}
                data-testid={props.rowTestId ?? 'mlplat-row'}
                data-id={key}
                tabIndex={onSelect ? 0 : undefined}
                aria-selected={onSelect ? isSelected : undefined}
                className={isSelected ? 'mlplat-mod-selected' : undefined}
                onClick={onSelect ? () => onSelect(key) : undefined}
                onKeyDown={
                  onSelect
                    ? event => {
                        if (
                          event.target === event.currentTarget &&
                          (event.key === 'Enter' || event.key === ' ')
                        ) {
                          event.preventDefault();
                          onSelect(key);
                        }
                      }
                    : undefined
                }
              >
                {columns.map(column => (
                  <td key={column.id} className={column.className}>
                    {column.cell(row)}
                  </td>
                ))}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** Stops a click inside a row (a checkbox, a button) from selecting the row. */
export function stopRowClick(event: React.SyntheticEvent): void {
  event.stopPropagation();
}
